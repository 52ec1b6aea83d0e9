"""The framework floor: a bare twisted.web JSON-RPC echo on a Unix socket.

It parses the JSON body and answers ``{"jsonrpc": "2.0", "id": ..., "result": params}``:
what any JSON-RPC server on twisted.web costs before it does any work.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

from twisted.internet import reactor as _reactor
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site


class Echo(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # twisted.web's Resource is untyped

    def render_POST(self, request: Request) -> bytes:
        assert request.content is not None
        doc = json.loads(request.content.read())
        data = json.dumps({"jsonrpc": "2.0", "id": doc.get("id"), "result": doc.get("params")}).encode()
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", str(len(data)).encode())
        return data


class QuietSite(Site):
    noisy = False

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource)  # type: ignore[no-untyped-call]  # twisted.web's Site is untyped

    def log(self, request: Any) -> None:
        pass


if __name__ == "__main__":
    reactor: Any = _reactor  # the global reactor's type names no interface
    root = Resource()
    root.putChild(b"rpc", cast(IResource, Echo()))
    reactor.listenUNIX(sys.argv[1], QuietSite(root), mode=0o600)
    reactor.run()
