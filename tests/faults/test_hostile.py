"""Hostile input: property-based fuzzing of the JSON-RPC endpoint against the real daemon and volume.

The daemon must never crash, must answer every request with a JSON-RPC reply
(an error for anything malformed; never -32603, never an HTTP error), and must
not create, change or remove anything outside the in-volume folder: a decoy
tree on the node, a decoy folder in the volume root, and the traps planted in
the folder (symlinks out of the volume, a directory, a FIFO) are checksummed
before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from glusterd_mgr.app.schema import DISCOVER
from glusterd_mgr.core.requests import PARAMS
from glusterd_mgr.core.volume import VolumeSpec

from ..support.daemon_proc import DaemonProcess
from .conftest import env_int
from .helpers import http, raw_post, timed, tree_digest

EXAMPLES = env_int("GGMT_FAULT_FUZZ_EXAMPLES", 3000)
SEED = env_int("GGMT_SEED", 20261124)
ANCHOR = {"kind": "os-install", "id": "fuzz-anchor"}
METHODS = [*PARAMS, DISCOVER]
"""Every method, in the order of their params types: the eight that take a volume first."""
TRAPS = ["out-file.0", "out-dir", "rel-out.0", "adir.0", "fifo.0", "victim.0"]

pytestmark = [pytest.mark.gluster, pytest.mark.timeout(max(300, EXAMPLES // 4 + 120))]


def attack_paths(decoy: str) -> list[str]:
    return [
        "..", "../x.0", "ganeti/../x.0", "ganeti/../../x.0", "ganeti/./x.0", "./ganeti/x.0", "ganeti//x.0", "ganeti/", "ganeti",
        "/etc/passwd", f"{decoy}/secret", "ganeti/\x00x.0", "ganeti/x.0\x00", "\x00", "ganeti/a\nb.0", "ganeti/\x1b[2J.0",
        "ganeti/\u202eexe.0", "ganeti/ünï😀.0", "ganeti/" + "x" * 256, "ganeti/" + "é" * 200, "x" * 5000,
        "ganeti/out-file.0", "ganeti/out-dir", "ganeti/out-dir/secret", "ganeti/rel-out.0", "ganeti/adir.0", "ganeti/adir.0/inner",
        "ganeti/fifo.0", "voldecoy/file", "voldecoy", "ganeti/victim.0", "ganeti/.victim.0.creating", "GANETI/x.0", "ganeti\\x.0",
        "ganeti/ x.0", "ganeti/x.0 ", "~/x.0", "ganeti/*", "ganeti/$(touch /tmp/pwned).0",
    ]  # fmt: skip


def strategies(volume: VolumeSpec, decoy: str) -> st.SearchStrategy[bytes]:
    leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40))
    anything = st.recursive(leaf, lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch, max_size=4), max_leaves=12)
    hostile_int = st.one_of(
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, -1, 1, 2, 2**31, 2**53 + 1, 2**63, 2**64 + 1, 10**100, 1073741824, 1073741825, 65535, 65536]),
        st.floats(),
        st.booleans(),
        st.text(max_size=6),
    )
    real = volume.to_json()
    volumes = st.one_of(
        st.just(real),
        st.fixed_dictionaries(
            {"host": st.sampled_from([volume.host, "", "127.0.0.1", "::1", "localhost", "-oremount", "a,b", "x y", "h\n", "é.invalid"])},
            optional={"port": hostile_int, "volume": st.sampled_from(["gv0", "gv0\n", "../x", "-o", "a" * 65, "", "gv1"]), "x": anything},
        ),
        anything,
    )
    holders = st.one_of(
        st.fixed_dictionaries({"kind": st.sampled_from(["instance", "os-install", "job", "vm", ""]), "id": st.text(max_size=300)}),
        anything,
    )
    good_names = st.from_regex(r"\Aganeti/fz-[a-z0-9]{1,6}\.[0-9]\Z")
    in_folder = st.text(max_size=30).map(lambda s: "ganeti/" + s)
    paths = st.one_of(st.sampled_from(attack_paths(decoy)), good_names, good_names, st.text(max_size=300), in_folder)

    def disk_params(sizes: st.SearchStrategy[Any], size_key: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {"volume": volumes, "path": paths},
            optional={size_key: sizes, "new_path": paths, "dryrun": anything, "backingstore": anything, "extra": anything},
        )

    # Preallocation only with small sizes: a real fallocate of terabytes would fill the lab's disk.
    create = st.one_of(
        disk_params(hostile_int, "size"),
        st.fixed_dictionaries({"volume": st.just(real), "path": paths, "size": st.integers(1, 8), "preallocate": st.just(True)}),
        st.fixed_dictionaries(
            {"volume": st.just(real), "path": paths, "size": hostile_int, "preallocate": st.sampled_from([False, 0, "yes", None])}
        ),
    )
    params_by_method: dict[str, st.SearchStrategy[Any]] = {
        "volume.acquire": st.fixed_dictionaries({"volume": volumes, "holder": holders}),
        "volume.release": st.fixed_dictionaries({"volume": volumes, "holder": holders}),
        "volume.statvfs": st.fixed_dictionaries({"volume": volumes}),
        "disk.create": create,
        "disk.remove": disk_params(hostile_int, "size"),
        "disk.grow": disk_params(hostile_int, "amount"),
        "disk.info": disk_params(hostile_int, "size"),
        "disk.rename": st.fixed_dictionaries({"volume": volumes, "path": paths, "new_path": paths}),
        "status": st.one_of(st.none(), st.just({}), anything),
        "rpc.discover": st.one_of(st.none(), anything),
    }
    ids = st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats(), anything)

    @st.composite
    def request(draw: st.DrawFn) -> Any:
        method = draw(st.one_of(st.sampled_from(METHODS), st.text(max_size=30), anything))
        params = draw(params_by_method[method]) if isinstance(method, str) and method in params_by_method else draw(anything)
        req: dict[str, Any] = {"jsonrpc": draw(st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2.0, None])), "method": method}
        if draw(st.integers(0, 9)) > 0:  # now and then none: "params" may be left out
            req["params"] = params
        if draw(st.integers(0, 9)) > 0:
            req["id"] = draw(ids)
        if draw(st.integers(0, 9)) == 0:
            req[draw(st.text(max_size=5))] = draw(anything)
        return req

    def encode(doc: Any, ascii_only: bool) -> bytes:
        return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")

    def nested(depth: int, inner: str) -> bytes:
        return ("[" * depth + inner + "]" * depth).encode()

    @st.composite
    def well_formed(draw: st.DrawFn) -> Any:
        """A valid envelope around a real method, so the hostile params reach the engine."""
        method = draw(st.sampled_from(METHODS[:8]))
        return {"jsonrpc": "2.0", "id": draw(st.integers(0, 2**53)), "method": method, "params": draw(engine_params[method])}

    engine_params: dict[str, st.SearchStrategy[Any]] = {
        "volume.acquire": st.fixed_dictionaries({"volume": st.just(real), "holder": holders}),
        "volume.release": st.fixed_dictionaries({"volume": st.just(real), "holder": holders}),
        "volume.statvfs": st.fixed_dictionaries({"volume": volumes}),
        "disk.create": st.one_of(
            create,
            st.fixed_dictionaries(
                {"volume": st.just(real), "path": paths, "size": st.integers(1, 8)}, optional={"preallocate": st.booleans()}
            ),
            st.fixed_dictionaries({"volume": st.just(real), "path": paths, "size": st.integers(1, 1 << 30)}),
        ),
        "disk.remove": st.fixed_dictionaries({"volume": st.just(real), "path": paths}),
        "disk.grow": st.fixed_dictionaries(
            {"volume": st.just(real), "path": paths, "amount": st.integers(1, 1 << 30) | hostile_int},
            optional={"dryrun": st.booleans(), "backingstore": st.booleans()},
        ),
        "disk.info": st.fixed_dictionaries({"volume": st.just(real), "path": paths}),
        "disk.rename": st.fixed_dictionaries({"volume": st.just(real), "path": paths, "new_path": paths}),
    }

    return st.one_of(
        st.builds(encode, well_formed(), st.booleans()),
        st.builds(encode, well_formed(), st.booleans()),
        st.builds(encode, well_formed(), st.booleans()),
        st.builds(encode, st.lists(well_formed(), min_size=1, max_size=6), st.booleans()),
        st.builds(encode, request(), st.booleans()),
        st.builds(encode, st.lists(request(), min_size=1, max_size=8), st.booleans()),
        st.builds(encode, anything, st.booleans()),
        st.binary(max_size=400),
        st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.builds(nested, st.integers(1, 200_000), st.sampled_from(["", "1", '{"a":[]}'])),
        st.builds(deep_params, st.integers(1, 900) | st.integers(1000, 5000)),  # 900-1000: test_deep_params_* below
        st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"[[]]", b"\xff\xfe", b"\x00" * 64, b"{" * 50, b"1e999999", b"-0", b"NaN"]),
    )


def deep_params(depth: int) -> bytes:
    deep = "[" * depth + "]" * depth
    params = f'{{"volume":{deep},"path":{deep},"size":1}}'
    return ('{"jsonrpc":"2.0","id":1,"method":"disk.create","params":' + params + "}").encode()


def check_reply(status: int, body: bytes, stats: Counter[str]) -> None:
    assert status in (200, 204), f"HTTP {status}: {body[:300]!r}"
    if status == 204:
        assert body == b""
        stats["no_reply"] += 1
        return
    reply = json.loads(body)
    replies = reply if isinstance(reply, list) else [reply]
    assert replies, "an empty batch reply"
    for r in replies:
        assert isinstance(r, dict) and r.get("jsonrpc") == "2.0" and ("result" in r) != ("error" in r), r
        if "error" in r:
            code = r["error"]["code"]
            assert isinstance(code, int) and code != -32603, f"internal error: {r}"
            assert isinstance(r["error"]["message"], str) and r["error"]["message"]
            stats[f"error {code}"] += 1
        else:
            stats["result"] += 1
            result = r["result"]
            if isinstance(result, dict):
                stats["result " + ",".join(sorted(result))] += 1


def plant_traps(daemon: DaemonProcess, decoy: str) -> None:
    os.makedirs(os.path.join(decoy, "sub"))
    with open(os.path.join(decoy, "secret"), "w") as f:
        f.write("outside the volume\n")
    with open(os.path.join(decoy, "sub", "file.0"), "w") as f:
        f.write("also outside\n")
    root = daemon.storage_dir
    os.makedirs(os.path.join(root, "voldecoy"), exist_ok=True)
    with open(os.path.join(root, "voldecoy", "file"), "w") as f:
        f.write("in the volume, outside the folder\n")
    folder = os.path.join(root, "ganeti")
    os.makedirs(folder, exist_ok=True)
    os.symlink(os.path.join(decoy, "secret"), os.path.join(folder, "out-file.0"))
    os.symlink(decoy, os.path.join(folder, "out-dir"))
    os.symlink("../voldecoy/file", os.path.join(folder, "rel-out.0"))
    os.makedirs(os.path.join(folder, "adir.0"))
    with open(os.path.join(folder, "adir.0", "inner"), "w") as f:
        f.write("inside a directory that is not a disk\n")
    os.mkfifo(os.path.join(folder, "fifo.0"))


OWN_FILES = ("gluster", "state", "run", "decoy", "daemon.log", "clientlog")


def trap_digest(path: str) -> Any:
    if os.path.islink(path):
        return os.readlink(path)
    if os.path.isdir(path):
        return tree_digest(path)
    return os.lstat(path).st_mode


def watched(daemon: DaemonProcess, decoy: str) -> dict[str, Any]:
    """What must not change: the decoy tree, the volume outside the folder, the traps, the daemon's own files."""
    folder = os.path.join(daemon.storage_dir, "ganeti")
    return {
        "decoy": tree_digest(decoy),
        "volume": tree_digest(daemon.storage_dir, skip=lambda rel: rel == "ganeti" or rel.startswith(".trashcan")),
        "traps": {t: trap_digest(os.path.join(folder, t)) for t in TRAPS if t != "victim.0"},
        "node": tree_digest(daemon.root, skip=lambda rel: rel.split("/")[0] in OWN_FILES),
        "tmp_pwned": os.path.exists("/tmp/pwned"),
    }


def test_fuzzed_rpc_never_crashes_and_touches_nothing_outside_the_folder(make_daemon: Any, volume: VolumeSpec, figure: Any) -> None:
    d: DaemonProcess = make_daemon("--mount-timeout", "5")
    c = d.client()
    vol = volume.to_json()
    c.acquire(vol, ANCHOR)
    decoy = os.path.join(d.root, "decoy")
    folder = os.path.join(d.storage_dir, "ganeti")
    plant_traps(d, decoy)
    c.disk_create(vol, "ganeti/victim.0", 1)
    before_names = set(os.listdir(folder))
    before = watched(d, decoy)
    stats: Counter[str] = Counter()

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=strategies(volume, decoy))
    def one(body: bytes) -> None:
        status, reply = http(d.socket, "POST", "/rpc", body, timeout=60)
        check_reply(status, reply, stats)
        stats["bodies"] += 1
        assert d.proc is not None and d.proc.poll() is None, "the daemon died"

    try:
        one()
        # Bodies no generator above sends: over the size limit, a lying Content-Length, exactly at the limit.
        at_limit = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "status"}).encode() + b" " * ((1 << 20) - 60)
        for body in (b"[" + b"1," * (1 << 20) + b"1]", b" " * (1 << 20) + b"{}", at_limit):
            status, reply = raw_post(d.socket, body)
            check_reply(status, reply, stats)
            stats["bodies"] += 1
        # Clients that never finish their request (a lying Content-Length, headers cut short) hold only their own
        # connection: everybody else is still answered at once.
        liars = [socket.socket(socket.AF_UNIX) for _ in range(20)]
        for n, liar in enumerate(liars):
            liar.connect(d.socket)
            head = b"POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n{}" if n % 2 else b"POST /rpc HTTP/1.1\r\nHos"
            liar.sendall(head)
        _, took = timed(c.status)
        assert took < 1.0, f"status took {took:.2f} s next to stalled clients"
        for liar in liars:
            liar.close()
        after = watched(d, decoy)
    finally:
        log = d.log()
    assert d.proc is not None and d.proc.poll() is None, "the daemon died"
    for key in before:
        assert after[key] == before[key], f"{key} changed: something outside the in-volume folder was touched"
    assert "Traceback" not in open(d.log_path, errors="replace").read(), log
    # Clean up what the fuzzer made inside the folder (allowed there), and its holders.
    made = set(os.listdir(folder)) - before_names
    for name in made:
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
    for mount in c.status()["mounts"]:
        for h in mount["holders"]:
            if mount["volume"] == vol and h["kind"] != "job":
                c.release(vol, h)
    figure(
        "hostile",
        bodies=stats["bodies"],
        results=stats["result"],
        errors=sum(v for k, v in stats.items() if k.startswith("error")),
        path_refused=stats["error -32003"],
        invalid_params=stats["error -32602"],
        parse_errors=stats["error -32700"],
        invalid_requests=stats["error -32600"],
        internal_errors=0,
        crashes=0,
        disks_created=stats["result path,size_bytes"],
        disks_grown=stats["result changed,size_bytes"],
        files_made_in_folder=len(made),
        outside_changed=0,
    )


def test_deep_params_get_invalid_params_not_an_internal_error(daemon: DaemonProcess) -> None:
    stats: Counter[str] = Counter()
    for depth in range(900, 1000, 10):
        status, reply = raw_post(daemon.socket, deep_params(depth))
        check_reply(status, reply, stats)
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert "Traceback" not in open(daemon.log_path, errors="replace").read()
