"""JSON-RPC 2.0 over HTTP as a ``twisted.web`` resource (batches and notifications per the spec).

Why our own: the Twisted JSON-RPC packages are dead or break the spec (no
batches, wrong error codes), and the protocol is small.  Every bad input gets a
JSON-RPC error with HTTP 200, never a 500 or a dropped connection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, gatherResults, succeed
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from ..core.errors import InvalidParams, MountdError
from ..core.requests import Params
from .schema import DISCOVER, MethodSchema, openrpc

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "MAX_BATCH",
    "MAX_BODY",
    "MAX_DEPTH",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "Call",
    "CappedRequest",
    "Dispatcher",
    "JsonRpcResource",
    "RpcStats",
]

MAX_BODY = 1024 * 1024
MAX_BATCH = 1000
MAX_DEPTH = 32
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INTERNAL_ERROR = -32700, -32600, -32601, -32603
log = Logger()

Call = Callable[[Params], Awaitable[Any]]
"""What answers a call, given its params parsed (``Engine.call``)."""


class CappedRequest(server.Request):
    """A request that stops buffering a body past ``MAX_BODY`` and remembers that it did."""

    oversized = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > MAX_BODY:
            self.oversized = True
            length = 0
        super().gotLength(length)  # type: ignore[no-untyped-call]

    def handleContentChunk(self, data: bytes) -> None:
        if self.oversized:
            return
        content: Any = self.content
        if content.tell() + len(data) > MAX_BODY:
            self.oversized = True
            content.seek(0)
            content.truncate()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call]


@dataclass
class RpcStats:
    """Observer hooks for metrics: called once per method call with its error code (0 = success)."""

    observe: Callable[[str, int, float], None] = lambda method, code, seconds: None


def _error(id_: Any, code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


@dataclass
class Dispatcher:
    """Checks a call's params against its method's schema, parses them into the method's type, and hands them to ``call``."""

    schemas: dict[str, MethodSchema]
    call: Call
    clock: Any
    stats: RpcStats = field(default_factory=RpcStats)

    def __post_init__(self) -> None:
        self.discover = openrpc(self.schemas)

    async def call_one(self, req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict):
            return _error(None, INVALID_REQUEST, "invalid request: each request must be a JSON object")
        id_ = req.get("id")
        notification = "id" not in req
        if req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
            return _error(id_ if _valid_id(id_) else None, INVALID_REQUEST, 'invalid request: needs "jsonrpc": "2.0" and a string "method"')
        if not notification and not _valid_id(id_):
            return _error(None, INVALID_REQUEST, "invalid request: id must be a string, a number or null")
        method = req["method"]
        started = self.clock.seconds()
        code = 0
        try:
            schema = self.schemas.get(method)
            params = req.get("params")
            if method == DISCOVER:
                if params not in (None, {}, []):
                    raise InvalidParams(f"{method} takes no params")
                result: Any = self.discover
            elif schema is None:
                code = METHOD_NOT_FOUND
                return None if notification else _error(id_, METHOD_NOT_FOUND, f"method not found: {method!r}; see rpc.discover")
            else:
                result = await self.call(schema.parse(params))
        except MountdError as e:
            code = e.code
            return None if notification else {"jsonrpc": "2.0", "id": id_, "error": e.to_json()}
        except Exception:
            code = INTERNAL_ERROR
            log.failure("internal error in {method}", method=method)
            return None if notification else _error(id_, INTERNAL_ERROR, f"internal error in {method}; see the daemon's log")
        finally:
            self.stats.observe(method, code, self.clock.seconds() - started)
        return None if notification else {"jsonrpc": "2.0", "id": id_, "result": result}

    async def handle_body(self, body: bytes) -> Any:
        """The response document for a request body, or None when nothing is to be sent back."""
        try:
            doc = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite)
        except _NotFinite as e:
            return _error(None, INVALID_REQUEST, f"invalid request: {e}")
        except (ValueError, UnicodeDecodeError) as e:
            return _error(None, PARSE_ERROR, f"parse error: the body is not JSON ({e})")
        except RecursionError:
            return _error(None, PARSE_ERROR, "parse error: the body nests too deeply")
        if _nests_deeper(doc, MAX_DEPTH):
            return _error(None, INVALID_REQUEST, f"invalid request: JSON nested more than {MAX_DEPTH} deep")
        if isinstance(doc, list):
            if not doc:
                return _error(None, INVALID_REQUEST, "invalid request: empty batch")
            if len(doc) > MAX_BATCH:
                return _error(None, INVALID_REQUEST, f"invalid request: a batch holds at most {MAX_BATCH} calls")
            replies = await gatherResults([ensureDeferred(self.call_one(r)) for r in doc])
            kept = [r for r in replies if r is not None]
            return kept or None
        return await self.call_one(doc)


def _nests_deeper(doc: Any, limit: int) -> bool:
    """Whether ``doc`` nests more than ``limit`` deep (iteratively: deep input must not exhaust the stack)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _NotFinite(ValueError):
    """A number JSON's grammar allows but no double holds (``1e400``): echoed back, it would be ``Infinity``, which is not JSON."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise _NotFinite(f"the number {shown} is not finite as a double; send a smaller one")
    return value


def _valid_id(id_: Any) -> bool:
    return id_ is None or isinstance(id_, str) or (isinstance(id_, (int, float)) and not isinstance(id_, bool))


class JsonRpcResource(Resource):
    isLeaf = True

    def __init__(self, dispatcher: Dispatcher) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.dispatcher = dispatcher
        self.in_flight = 0
        self._drain_waiters: list[Deferred[None]] = []

    def drained(self) -> Deferred[None]:
        """Fires once no call is in flight (at once when none is); cancelling it gives up the wait."""
        if not self.in_flight:
            return succeed(None)
        waiter: Deferred[None] = Deferred(canceller=self._drain_waiters.remove)
        self._drain_waiters.append(waiter)
        return waiter

    def render_GET(self, request: server.Request) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(_error(None, INVALID_REQUEST, "use POST with a JSON-RPC 2.0 body")).encode()

    def render_POST(self, request: server.Request) -> int | bytes:
        request.setHeader(b"content-type", b"application/json")
        if getattr(request, "oversized", False):
            return json.dumps(_error(None, INVALID_REQUEST, f"invalid request: the body is larger than {MAX_BODY} bytes")).encode()
        assert request.content is not None
        body = request.content.read()
        self.in_flight += 1
        d: Deferred[Any] = ensureDeferred(self.dispatcher.handle_body(body))

        def done(result: Any) -> Any:
            self.in_flight -= 1
            if not self.in_flight:
                waiters, self._drain_waiters = self._drain_waiters, []
                for waiter in waiters:
                    waiter.callback(None)
            return result

        def send(reply: Any) -> None:
            if request._disconnected:  # the caller went away; its call still ran to completion
                return
            if reply is None:
                request.setResponseCode(204)
            else:
                data = json.dumps(reply, allow_nan=False).encode()  # never Infinity or NaN, which are not JSON
                request.setHeader(b"content-length", str(len(data)).encode())
                request.write(data)
            request.finish()

        def broken(failure: Any) -> None:
            log.failure("JSON-RPC dispatch failed", failure)
            send(_error(None, INTERNAL_ERROR, "internal error; see the daemon's log"))

        d.addBoth(done).addCallback(send).addErrback(broken)
        return server.NOT_DONE_YET
