"""A synchronous client for ganeti-gluster-mountd: JSON-RPC 2.0 over HTTP/1.1 on a Unix socket.

Ganeti's node daemon imports this module, so it uses the standard library
only (plus ``glusterd_mgr.core.errors`` and the typed results of
``glusterd_mgr.core.results``, both stdlib-only too).

Every failure is raised as a :class:`~glusterd_mgr.core.errors.MountdError`:

* an error the daemon reports raises the type ``errors.ERRORS_BY_CODE`` names
  for its code, with the daemon's message and its ``data`` dict as ``.data``;
* a code that table does not know (or a reply that is not a JSON-RPC reply at
  all) raises :class:`RpcError`;
* no socket, or nobody listening on it, raises :class:`DaemonNotRunning`;
* no reply within the client's timeout raises ``errors.OperationTimeout``.

Each call opens its own connection and closes it afterwards, so a ``Client``
holds no socket between calls and survives a daemon restart.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
from collections.abc import Mapping
from typing import Any, cast

from .core.errors import ERRORS_BY_CODE, MountdError, OperationTimeout
from .core.results import AcquireResult, DiskCreated, DiskGrown, DiskInfoResult, DiskRemoved, DiskRenamed, ReleaseResult, Space, Status

DEFAULT_SOCKET = "/run/ganeti-gluster-mountd/rpc.sock"
DEFAULT_TIMEOUT = 60.0
RPC_PATH = "/rpc"
METRICS_PATH = "/metrics"

_EXCERPT = 200


class RpcError(MountdError):
    """The daemon's reply could not be understood, or carried an error code this client does not know.

    ``code`` is the JSON-RPC error code when the daemon sent one, otherwise
    the generic -32000; ``data`` holds whatever detail came back.
    """

    name = "rpc-error"

    def __init__(self, message: str, code: int = MountdError.code, **data: Any) -> None:
        super().__init__(message, **data)
        # ``code`` is a class constant on every other MountdError; here it varies per instance.
        self.code = code  # type: ignore[misc]


class DaemonNotRunning(MountdError):
    """Nothing answers on the daemon's socket: it is absent, or nobody listens on it."""

    name = "not-running"

    def __init__(self, message: str, socket_path: str) -> None:
        super().__init__(message, socket=socket_path)
        self.socket_path = socket_path


class _UnixHTTPConnection(http.client.HTTPConnection):
    """``HTTPConnection`` whose transport is an AF_UNIX stream socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    if len(text) > _EXCERPT:
        text = text[:_EXCERPT] + "..."
    return repr(text) if text else "an empty body"


class Client:
    """Talks to one ganeti-gluster-mountd through its Unix socket."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._ids = itertools.count(1)

    # -- transport ---------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """One HTTP exchange on a fresh connection: (status, reason, body)."""
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            try:
                conn.connect()
            except (FileNotFoundError, NotADirectoryError):
                raise DaemonNotRunning(
                    f"ganeti-gluster-mountd is not running (no socket at {self.socket_path})", self.socket_path
                ) from None
            except ConnectionRefusedError:
                raise DaemonNotRunning(
                    f"ganeti-gluster-mountd is not running (nobody listens on the socket at {self.socket_path})",
                    self.socket_path,
                ) from None
            except TimeoutError:
                raise self._timeout("connecting") from None
            except PermissionError:
                raise RpcError(
                    f"permission denied on the ganeti-gluster-mountd socket {self.socket_path} (run as root?)",
                    socket=self.socket_path,
                ) from None
            except OSError as e:
                raise RpcError(
                    f"cannot connect to ganeti-gluster-mountd at {self.socket_path}: {e.strerror or e}",
                    socket=self.socket_path,
                ) from None
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                response = conn.getresponse()
                return response.status, response.reason, response.read()
            except TimeoutError:
                raise self._timeout("waiting for its reply") from None
            except (http.client.HTTPException, OSError) as e:
                detail = str(e) or type(e).__name__
                raise RpcError(
                    f"ganeti-gluster-mountd at {self.socket_path} broke off the exchange: {detail}",
                    socket=self.socket_path,
                ) from None
        finally:
            conn.close()

    def _timeout(self, doing: str) -> OperationTimeout:
        return OperationTimeout(
            f"no answer from ganeti-gluster-mountd within {self.timeout:g} s ({doing}, socket {self.socket_path})",
            socket=self.socket_path,
            timeout=self.timeout,
        )

    # -- JSON-RPC ----------------------------------------------------------

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call ``method`` with named ``params``; return its ``result`` or raise its error."""
        request_id = next(self._ids)
        payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params or {})}
        body = json.dumps(payload).encode("utf-8")
        status, reason, reply = self._request("POST", RPC_PATH, body, {"Content-Type": "application/json", "Accept": "application/json"})
        what = f"ganeti-gluster-mountd answered {method} with"
        try:
            message = json.loads(reply)
        except ValueError:
            message = None
        if isinstance(message, dict) and message.get("jsonrpc") == "2.0" and "error" in message:
            # An error reply is honoured whatever the HTTP status that carried it.
            raise self._error(method, message["error"])
        if status != 200:
            raise RpcError(f"{what} HTTP {status} {reason}: {_excerpt(reply)}", http_status=status)
        if not isinstance(message, dict):
            raise RpcError(f"{what} something that is not a JSON object: {_excerpt(reply)}", http_status=status)
        if message.get("jsonrpc") != "2.0" or "result" not in message:
            raise RpcError(f"{what} a JSON object that is not a JSON-RPC 2.0 reply: {_excerpt(reply)}")
        if message.get("id") != request_id:
            raise RpcError(f"{what} the reply to request {message.get('id')!r}, not to request {request_id}")
        return message["result"]

    def _error(self, method: str, error: Any) -> MountdError:
        if not isinstance(error, dict):
            return RpcError(f"ganeti-gluster-mountd answered {method} with a malformed error: {error!r}")
        code = error.get("code")
        text = error.get("message")
        if not isinstance(text, str) or not text:
            text = f"{method} failed without a message (code {code!r})"
        data = error.get("data")
        details: dict[str, Any] = dict(data) if isinstance(data, dict) else ({} if data is None else {"data": data})
        cls = ERRORS_BY_CODE.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
        if cls is None:
            exc: MountdError = RpcError(text, code if isinstance(code, int) else MountdError.code)
        else:
            exc = cls(text)
        exc.data = details  # set afterwards: a "message" key in data must not clash with the argument
        return exc

    # -- typed helpers -----------------------------------------------------

    def acquire(self, volume: Mapping[str, Any], holder: Mapping[str, Any]) -> AcquireResult:
        """Add ``holder`` ({"kind", "id"}) to ``volume`` ({"host", "port", "volume"}), mounting it if needed."""
        return cast(AcquireResult, self.call("volume.acquire", {"volume": dict(volume), "holder": dict(holder)}))

    def release(self, volume: Mapping[str, Any], holder: Mapping[str, Any]) -> ReleaseResult:
        """Remove ``holder`` from ``volume``; the last holder's release unmounts it."""
        return cast(ReleaseResult, self.call("volume.release", {"volume": dict(volume), "holder": dict(holder)}))

    def statvfs(self, volume: Mapping[str, Any]) -> Space:
        """The volume's size and free space, in MiB."""
        return cast(Space, self.call("volume.statvfs", {"volume": dict(volume)}))

    def disk_create(self, volume: Mapping[str, Any], path: str, size: int, preallocate: bool = False) -> DiskCreated:
        """Create the disk file ``path`` (relative to the volume root) of ``size`` MiB."""
        return cast(DiskCreated, self.call("disk.create", {"volume": dict(volume), "path": path, "size": size, "preallocate": preallocate}))

    def disk_remove(self, volume: Mapping[str, Any], path: str) -> DiskRemoved:
        return cast(DiskRemoved, self.call("disk.remove", {"volume": dict(volume), "path": path}))

    def disk_grow(
        self,
        volume: Mapping[str, Any],
        path: str,
        amount: int,
        dryrun: bool = False,
        backingstore: bool = True,
        preallocate: bool = False,
    ) -> DiskGrown:
        """Grow the disk file ``path`` by ``amount`` MiB (``preallocate``: allocate the new range now)."""
        params = {"volume": dict(volume), "path": path, "amount": amount, "dryrun": dryrun, "backingstore": backingstore}
        if preallocate:
            params["preallocate"] = True
        return cast(DiskGrown, self.call("disk.grow", params))

    def disk_info(self, volume: Mapping[str, Any], path: str) -> DiskInfoResult:
        return cast(DiskInfoResult, self.call("disk.info", {"volume": dict(volume), "path": path}))

    def disk_rename(self, volume: Mapping[str, Any], path: str, new_path: str) -> DiskRenamed:
        """Move the disk ``path`` to ``new_path`` in the same folder; never over an existing disk."""
        return cast(DiskRenamed, self.call("disk.rename", {"volume": dict(volume), "path": path, "new_path": new_path}))

    def status(self) -> Status:
        """The daemon's version and one entry per volume it tracks."""
        result = self.call("status")
        if not isinstance(result, dict):
            raise RpcError(f"ganeti-gluster-mountd answered status with {type(result).__name__}, not an object")
        return cast(Status, result)

    def metrics(self) -> str:
        """The daemon's Prometheus metrics, as text (``GET /metrics`` on the same socket)."""
        status, reason, body = self._request("GET", METRICS_PATH, None, {"Accept": "text/plain"})
        if status != 200:
            raise RpcError(
                f"ganeti-gluster-mountd answered GET {METRICS_PATH} with HTTP {status} {reason}: {_excerpt(body)}",
                http_status=status,
            )
        return body.decode("utf-8", "replace")


__all__ = ["DEFAULT_SOCKET", "DEFAULT_TIMEOUT", "Client", "DaemonNotRunning", "RpcError"]
