"""The JSON-RPC resource in memory: ``Dispatcher.handle_body`` and the twisted.web resource, no socket."""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any, cast

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.task import Clock
from twisted.web import server
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyChannel, DummyRequest

from glusterd_mgr.app import rpc
from glusterd_mgr.app.schema import DISCOVER, load
from glusterd_mgr.core import effects as fx
from glusterd_mgr.core.errors import MountFailed
from glusterd_mgr.core.holders import HolderTable
from glusterd_mgr.core.requests import PARAMS, DiskGrowParams, Params
from glusterd_mgr.shell.driver import Engine
from glusterd_mgr.testing import MOUNTPOINT, World, config

VOLUME = {"host": "gs1", "volume": "gv0"}
HOLDER = {"kind": "instance", "id": "i1"}


def dispatcher() -> tuple[rpc.Dispatcher, World, list[tuple[str, int]]]:
    """The front door over the real engine on the in-memory world: what a call reached shows in its journal."""
    world, clock = World(), Clock()
    engine = Engine(clock, world, config(), HolderTable())
    observed: list[tuple[str, int]] = []
    stats = rpc.RpcStats(lambda method, code, seconds: observed.append((method, code)))
    return rpc.Dispatcher(load(), engine.call, clock, stats), world, observed


def journaled(world: World) -> list[tuple[str, str]]:
    """The holder changes the calls made durable, in order."""
    return [(change.op, change.holder.id) for change in world.journal]


def call(d: rpc.Dispatcher, body: bytes | str | Any) -> Any:
    raw = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    result = ensureDeferred(d.handle_body(raw))
    assert result.called, "the in-memory world answers at once"
    return cast(Any, result).result


def req(method: str, params: Any = None, id_: Any = 1) -> dict[str, Any]:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        doc["params"] = params
    if id_ is not ...:
        doc["id"] = id_
    return doc


def test_a_call_reaches_the_engine_and_its_result_comes_back_with_its_id() -> None:
    d, world, observed = dispatcher()
    reply = call(d, req("volume.acquire", {"volume": VOLUME, "holder": HOLDER}, id_="a"))
    assert reply == {"jsonrpc": "2.0", "id": "a", "result": {"mountpoint": MOUNTPOINT, "holders": 1, "mounted_now": True}}
    [change] = world.journal
    assert change.op == "acquire" and change.spec.host == "gs1" and change.holder.id == "i1"
    assert observed == [("volume.acquire", 0)]


def test_the_schemas_default_fills_an_optional_param_left_out() -> None:
    d, world, _ = dispatcher()
    reply = call(d, req("disk.grow", {"volume": VOLUME, "path": "ganeti/d", "amount": 1}))
    assert reply["result"] == {"done": "DiskGrowParams"}
    [disk] = [e for e in world.done if isinstance(e, fx.Disk)]
    assert isinstance(disk.params, DiskGrowParams)
    assert (disk.params.dryrun, disk.params.backingstore, disk.params.preallocate) == (False, True, False)


def test_every_method_with_a_schema_has_its_params_type_and_no_other() -> None:
    assert set(PARAMS) == set(load()) and DISCOVER not in PARAMS


def test_a_batch_answers_each_call_in_order_and_leaves_notifications_out() -> None:
    d, world, _ = dispatcher()
    reply = call(
        d,
        [
            req("volume.acquire", {"volume": VOLUME, "holder": HOLDER}, id_=1),
            req("volume.release", {"volume": VOLUME, "holder": HOLDER}, id_=...),
            req("status", id_=2),
            req("nope", id_=3),
        ],
    )
    assert [r["id"] for r in reply] == [1, 2, 3]
    assert reply[1]["result"]["mounts"] == [] and reply[2]["error"]["code"] == rpc.METHOD_NOT_FOUND
    assert journaled(world) == [("acquire", "i1"), ("release", "i1")]


def test_a_lone_notification_or_a_batch_of_them_gets_no_reply_but_runs() -> None:
    d, world, _ = dispatcher()
    assert call(d, req("volume.release", {"volume": VOLUME, "holder": HOLDER}, id_=...)) is None
    assert call(d, [req("volume.acquire", {"volume": VOLUME, "holder": HOLDER}, id_=...)]) is None
    assert call(d, req("nope", id_=...)) is None
    assert journaled(world) == [("acquire", "i1")], "the release of a holder not held journals nothing"


def test_bodies_that_are_not_json_are_parse_errors() -> None:
    d, _, observed = dispatcher()
    for body in (b"{", b"\xff\xfe", b"", b'{"jsonrpc": "2.0", "method": "status", "id": 1'):
        reply = call(d, body)
        assert reply["error"]["code"] == rpc.PARSE_ERROR and reply["id"] is None, body
    assert observed == []


def test_nan_infinity_and_deep_nesting_are_refused() -> None:
    d, _, _ = dispatcher()
    for constant in ("NaN", "Infinity", "-Infinity"):
        reply = call(d, f'{{"jsonrpc": "2.0", "method": "status", "id": {constant}}}')
        assert reply["error"]["code"] == rpc.PARSE_ERROR, constant
    deep = call(d, "[" * (rpc.MAX_DEPTH + 1) + "]" * (rpc.MAX_DEPTH + 1))
    assert deep["error"]["code"] == rpc.INVALID_REQUEST and "nested" in deep["error"]["message"]
    very_deep = call(d, "[" * 100_000 + "]" * 100_000)
    assert very_deep["error"]["code"] in (rpc.PARSE_ERROR, rpc.INVALID_REQUEST)


def test_a_float_where_an_integer_belongs_is_invalid_params_naming_the_field() -> None:
    d, world, _ = dispatcher()
    reply = call(d, req("disk.create", {"volume": VOLUME, "path": "ganeti/d", "size": 1.5}))
    assert reply["error"]["code"] == -32602 and reply["error"]["data"]["field"] == "size"
    assert world.done == []


def test_invalid_requests() -> None:
    d, _, _ = dispatcher()
    bad: list[Any] = [
        [],
        [1],
        42,
        json.dumps("status"),
        {"method": "status", "id": 1},
        {"jsonrpc": "1.0", "method": "status", "id": 1},
        {"jsonrpc": "2.0", "method": 7, "id": 1},
        {"jsonrpc": "2.0", "method": "status", "id": [1]},
        {"jsonrpc": "2.0", "method": "status", "id": True},
        [{"jsonrpc": "2.0", "method": "status", "id": i} for i in range(rpc.MAX_BATCH + 1)],
    ]
    for body in bad:
        reply = call(d, body)
        replies = reply if isinstance(reply, list) else [reply]
        assert all(r["error"]["code"] == rpc.INVALID_REQUEST for r in replies), body
    assert call(d, {"jsonrpc": "2.0", "method": "status", "id": [1]})["id"] is None
    # A bad id is not echoed; a good one is, even on an invalid request.
    assert call(d, {"jsonrpc": "1.0", "method": "status", "id": 9})["id"] == 9


def test_params_that_break_the_schema_are_invalid_params_naming_the_field() -> None:
    d, world, observed = dispatcher()
    cases: list[tuple[Any, str | None]] = [
        ({"volume": {"host": "gs1", "port": 0}, "holder": HOLDER}, "volume.port"),
        ({"volume": VOLUME, "holder": {"kind": "vm", "id": "i1"}}, "holder.kind"),
        ({"volume": VOLUME, "holder": HOLDER, "extra": 1}, None),
        ({"volume": VOLUME}, None),
    ]
    for params, field in cases:
        reply = call(d, req("volume.acquire", params))
        error = reply["error"]
        assert error["code"] == -32602 and error["data"]["type"] == "invalid-params", params
        if field is not None:
            assert error["data"]["field"] == field and field in error["message"]
    positional = call(d, req("volume.acquire", [VOLUME, HOLDER]))
    assert positional["error"]["code"] == -32602 and "by name" in positional["error"]["message"]
    assert call(d, req("rpc.discover", {"x": 1}))["error"]["code"] == -32602  # takes no params
    assert world.done == [] and {code for _m, code in observed} == {-32602}


def test_a_typed_error_of_the_engine_keeps_its_code_and_type() -> None:
    d, world, observed = dispatcher()
    world.mount_fails = True
    reply = call(d, req("disk.info", {"volume": VOLUME, "path": "ganeti/x"}, id_=5))
    assert reply["id"] == 5 and reply["error"]["code"] == MountFailed.code
    assert reply["error"]["data"]["type"] == "mount-failed" and reply["error"]["message"].startswith("mounting gs1:24007/gv0 on")
    assert observed == [("disk.info", MountFailed.code)]


def test_an_unexpected_exception_is_an_internal_error_without_its_text(fail_on_logged_errors: list[dict[str, Any]]) -> None:
    d, _, observed = dispatcher()

    async def broken(_params: Params) -> Any:
        raise RuntimeError("secret detail")

    d.call = broken
    reply = call(d, req("status", id_=1))
    assert reply["error"]["code"] == rpc.INTERNAL_ERROR and "secret" not in json.dumps(reply)
    assert observed == [("status", rpc.INTERNAL_ERROR)]
    [event] = fail_on_logged_errors  # logged with its traceback for the operator, not sent to the caller
    assert "secret detail" in event["log_failure"].getTraceback()
    fail_on_logged_errors.clear()


# --- the twisted.web resource -------------------------------------------------------------------


def post(resource: rpc.JsonRpcResource, body: bytes, oversized: bool = False) -> tuple[DummyRequest, Deferred[None]]:
    request = DummyRequest([b""])
    request.method = b"POST"
    request.content = BytesIO(body)  # type: ignore[attr-defined]
    request._disconnected = False  # type: ignore[attr-defined]  # set by server.Request, not DummyRequest
    if oversized:
        request.oversized = True  # type: ignore[attr-defined]
    finished = request.notifyFinish()
    result = resource.render(request)  # type: ignore[no-untyped-call]
    if result != server.NOT_DONE_YET:
        request.write(result)
        request.finish()
    return request, finished


def test_the_resource_answers_a_post_with_json_and_its_length() -> None:
    d, _, _ = dispatcher()
    resource = rpc.JsonRpcResource(d)
    request, finished = post(resource, json.dumps(req("status", id_=1)).encode())
    assert finished.called and request.finished
    body = b"".join(request.written)
    assert json.loads(body)["result"]["mounts"] == []
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/json"]
    assert request.responseHeaders.getRawHeaders(b"content-length") == [str(len(body)).encode()]
    assert request.responseCode in (None, 200) and resource.in_flight == 0


def test_the_resource_answers_a_notification_with_204_and_no_body() -> None:
    d, world, _ = dispatcher()
    request, _ = post(rpc.JsonRpcResource(d), json.dumps(req("volume.release", {"volume": VOLUME, "holder": HOLDER}, id_=...)).encode())
    assert request.responseCode == 204 and b"".join(request.written) == b"" and request.finished
    assert journaled(world) == [], "it ran: a holder not held, so nothing to journal"
    assert world.of(fx.ReadTable()) == [], "and released nothing"


def test_the_resource_refuses_an_oversized_body_without_dispatching() -> None:
    d, world, observed = dispatcher()
    body = json.dumps(req("volume.release", {"volume": VOLUME, "holder": HOLDER})).encode()
    request, _ = post(rpc.JsonRpcResource(d), body, oversized=True)
    reply = json.loads(b"".join(request.written))
    assert reply["error"]["code"] == rpc.INVALID_REQUEST and str(rpc.MAX_BODY) in reply["error"]["message"]
    assert world.done == [] and observed == []


def test_a_get_is_405_naming_post() -> None:
    d, _, _ = dispatcher()
    request = DummyRequest([b""])
    request.method = b"GET"
    body = rpc.JsonRpcResource(d).render(request)  # type: ignore[no-untyped-call]
    assert request.responseCode == 405 and request.responseHeaders.getRawHeaders(b"allow") == [b"POST"]
    assert json.loads(body)["error"]["code"] == rpc.INVALID_REQUEST


def test_a_slow_call_keeps_the_request_open_and_counts_in_flight() -> None:
    d, _, _ = dispatcher()
    gate: Deferred[Any] = Deferred()

    async def slow(_params: Params) -> Any:
        return await gate

    d.call = slow
    resource = rpc.JsonRpcResource(d)
    request, finished = post(resource, json.dumps(req("status", id_=1)).encode())
    assert not finished.called and resource.in_flight == 1
    gate.callback({"ok": True})
    assert finished.called and resource.in_flight == 0
    assert json.loads(b"".join(request.written))["result"] == {"ok": True}


def test_a_caller_gone_before_the_answer_gets_nothing_written_but_the_call_completes() -> None:
    d, _, _ = dispatcher()
    gate: Deferred[Any] = Deferred()
    ran: list[bool] = []

    async def slow(_params: Params) -> Any:
        await gate
        ran.append(True)
        return {}

    d.call = slow
    resource = rpc.JsonRpcResource(d)
    request, finished = post(resource, json.dumps(req("status", id_=1)).encode())
    finished.addErrback(lambda _f: None)
    request._disconnected = True  # type: ignore[attr-defined]  # what server.Request.connectionLost sets
    gate.callback(None)
    assert ran == [True] and request.written == [] and resource.in_flight == 0


# --- the size cap of CappedRequest --------------------------------------------------------------


def capped() -> rpc.CappedRequest:
    channel = DummyChannel()
    channel.site = server.Site(Resource())
    return rpc.CappedRequest(channel, False)  # type: ignore[no-untyped-call]


def buffered(request: rpc.CappedRequest) -> bytes:
    content: Any = request.content
    content.seek(0)
    data: bytes = content.read()
    return data


def test_the_capped_request_drops_a_body_announced_too_large() -> None:
    request = capped()
    request.gotLength(rpc.MAX_BODY + 1)
    request.handleContentChunk(b"x" * 10)
    assert request.oversized and buffered(request) == b""


def test_the_capped_request_drops_a_chunked_body_that_grows_too_large() -> None:
    request = capped()
    request.gotLength(None)
    request.handleContentChunk(b"x" * rpc.MAX_BODY)
    assert not request.oversized
    request.handleContentChunk(b"y")
    assert request.oversized and buffered(request) == b""
    request.handleContentChunk(b"z")
    assert buffered(request) == b""


def test_the_capped_request_keeps_a_body_at_the_cap() -> None:
    request = capped()
    request.gotLength(rpc.MAX_BODY)
    request.handleContentChunk(b"a" * rpc.MAX_BODY)
    assert not request.oversized and len(buffered(request)) == rpc.MAX_BODY


def test_numbers_beyond_a_double_are_invalid_requests_never_echoed_as_infinity() -> None:
    """``1e400`` is JSON to the grammar but no number to a double: echoed back it would be ``Infinity``, which is not JSON."""
    d, world, observed = dispatcher()
    for body in (
        '{"jsonrpc": "2.0", "method": "status", "id": 1e400}',
        '{"jsonrpc": "2.0", "method": "status", "id": -1e400}',
        '{"jsonrpc": "2.0", "method": "disk.info", "id": 1, "params": {"volume": {"host": "gs1", "port": 1e999}, "path": "ganeti/d"}}',
    ):
        reply = call(d, body)
        json.dumps(reply, allow_nan=False)  # the reply itself is JSON
        assert reply["id"] is None and reply["error"]["code"] == rpc.INVALID_REQUEST, body
        assert "1e" in reply["error"]["message"] and "finite" in reply["error"]["message"]
    assert world.done == [] and observed == []
