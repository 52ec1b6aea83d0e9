"""SIGKILL between any two steps: a restart has exactly the acknowledged holders, and one mount."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from typing import Any

import pytest

from glusterd_mgr.core.volume import VolumeSpec

from .conftest import NodeFactory
from .support import kernel

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(600)]
ROUNDS = int(os.environ.get("GGMT_CRASH_ROUNDS", "25"))
HOLDERS = [{"kind": "instance", "id": f"i{n}.0"} for n in range(4)] + [{"kind": "os-install", "id": "os1"}]


class Child:
    def __init__(self, nodes: NodeFactory) -> None:
        config = nodes.config()
        engine = {
            k: getattr(config, k)
            for k in ("storage_dir", "whitelist", "whitelist_file", "log_dir", "mount_timeout", "fs_timeout", "probe_timeout")
        }
        arg = json.dumps({"engine": engine, "node": {"state_dir": nodes.state_dir, "probe_interval": 3600}})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.engine_driver", arg],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            text=True,
        )
        assert self.read() == {"ready": True}

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"driver exited with {self.proc.poll()}"
        result: dict[str, Any] = json.loads(line)
        return result

    def send(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def call(self, req: dict[str, Any]) -> dict[str, Any]:
        self.send(req)
        return self.read()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def held(status: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(h["kind"], h["id"]) for v in status for h in v["holders"]}


def test_sigkill_between_steps_keeps_exactly_the_acknowledged_holders(nodes: NodeFactory, volume: VolumeSpec) -> None:
    rng = random.Random(int(os.environ.get("GGMT_SEED", "20261124")))
    model: set[tuple[str, str]] = set()
    faults = exact = in_flight = 0
    for _ in range(ROUNDS):
        child = Child(nodes)
        restored = child.call({"op": "status"})["result"]
        assert held(restored) == model, "restart must restore exactly the acknowledged holders"
        assert len(kernel.glusterfs_stack(nodes.storage_dir)) <= 1, "never two mounts stacked"
        if model:
            assert len(kernel.glusterfs_stack(nodes.storage_dir)) == 1, "a volume with holders is mounted"
            assert restored[0]["state"] == "mounted"
        pending: tuple[str, tuple[str, str]] | None = None
        for _ in range(rng.randint(0, 6)):
            holder = rng.choice(HOLDERS)
            op = rng.choice(["acquire", "release"])
            reply = child.call({"op": op, "volume": volume.to_json(), "holder": holder})
            assert "result" in reply, reply
            key = (holder["kind"], holder["id"])
            (model.add if op == "acquire" else model.discard)(key)
        if rng.random() < 0.5:
            holder = rng.choice(HOLDERS)
            op = rng.choice(["acquire", "release"])
            child.send({"op": op, "volume": volume.to_json(), "holder": holder})
            pending = (op, (holder["kind"], holder["id"]))
            in_flight += 1
        else:
            exact += 1
        child.kill()
        faults += 1
        if pending is not None:
            # The kill may have come before or after the change became durable: learn which.
            probe = Child(nodes)
            after = held(probe.call({"op": "status"})["result"])
            op, key = pending
            other = set(model)
            (other.add if op == "acquire" else other.discard)(key)
            assert after in (model, other), f"{after} is neither {model} nor {other}"
            model = after
            probe.kill()
            faults += 1
    final = Child(nodes)
    assert held(final.call({"op": "status"})["result"]) == model
    for kind, hid in sorted(model):
        assert "result" in final.call({"op": "release", "volume": volume.to_json(), "holder": {"kind": kind, "id": hid}})
    assert len(kernel.glusterfs_stack(nodes.storage_dir)) == 0
    final.kill()
    print(f"\ncrash rounds={ROUNDS} sigkills={faults} killed-while-idle={exact} killed-in-flight={in_flight} holders lost=0")
