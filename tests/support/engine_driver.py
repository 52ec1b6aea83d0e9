"""A child process that drives one engine node from JSON lines on stdin (for crash tests).

Each request line gets one response line, written only after the engine has
acknowledged the change, so the parent knows exactly what was acknowledged
when it kills this process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet import stdio
from twisted.internet.defer import ensureDeferred
from twisted.protocols.basic import LineReceiver

from glusterd_mgr.core.errors import MountdError
from glusterd_mgr.core.holders import Holder
from glusterd_mgr.core.requests import AcquireParams, ReleaseParams
from glusterd_mgr.core.volume import VolumeSpec
from glusterd_mgr.shell.driver import EngineConfig
from glusterd_mgr.shell.node import Node, NodeOptions


class Driver(LineReceiver):
    delimiter = b"\n"

    def __init__(self, node: Node) -> None:
        self.node = node

    def lineReceived(self, line: bytes) -> None:
        ensureDeferred(self.handle(json.loads(line)))

    async def handle(self, req: dict[str, Any]) -> None:
        engine = self.node.engine
        try:
            if req["op"] == "status":
                result: Any = engine.status()
            else:
                spec = VolumeSpec.from_json(req["volume"])
                holder = Holder.from_json(req["holder"])
                params = AcquireParams(spec, holder) if req["op"] == "acquire" else ReleaseParams(spec, holder)
                result = await engine.call(params)
            reply = {"id": req.get("id"), "result": result}
        except MountdError as e:
            reply = {"id": req.get("id"), "error": e.to_json()}
        self.sendLine(json.dumps(reply).encode())  # type: ignore[no-untyped-call]  # LineReceiver is untyped


def main() -> None:
    reactor: Any = _reactor  # the global reactor's type names no interface
    config = json.loads(sys.argv[1])
    node = Node(reactor, EngineConfig(**config["engine"]), NodeOptions(**config["node"]))

    def ready(_: object) -> None:
        stdio.StandardIO(Driver(node))
        sys.stdout.write(json.dumps({"ready": True}) + "\n")
        sys.stdout.flush()

    node.start().addCallback(ready)
    reactor.run()


if __name__ == "__main__":
    main()
