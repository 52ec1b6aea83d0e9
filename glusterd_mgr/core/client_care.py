"""Care of a mount's FUSE client: its OOM score, a systemd scope of its own, and the servers its graph names."""

from __future__ import annotations

from . import client_log, fuse_client, volfile_servers
from .effects import Level, Locked, LogTail, Proc, Run, Say, SetOomScore, Systemd, WriteState, ask
from .health import watch_client
from .state import UP, NodeState, VolumeState

__all__ = ["learn_servers", "protect_client", "settle_client"]


def settle_client(node: NodeState, vs: VolumeState) -> Proc[None]:
    """After a restore: read the client's figures, give it its OOM score, move it into a scope of its own."""
    if vs.phase not in UP:
        return
    yield from watch_client(node, vs)
    yield from protect_client(node, vs)  # adopted clients too: made by an older version, or by hand
    yield from _rehome_client(node, vs)


def protect_client(node: NodeState, vs: VolumeState) -> Proc[None]:
    """Give the client the configured OOM score, so the kernel kills a guest before the client of every guest's disk."""
    wanted, client = node.config.client_oom_score_adj, vs.client
    if wanted is None or client is None or client.oom_score_adj == wanted:
        return
    problem = yield from ask(SetOomScore(client.pid, wanted))
    if problem:
        fields = {"pid": client.pid, "volume": vs.spec.key, "wanted": wanted, "problem": problem}
        yield Say(Level.WARN, "cannot set the OOM score of the FUSE client {pid} of {volume} to {wanted}: {problem}", fields)
    yield from watch_client(node, vs)


def _rehome_client(node: NodeState, vs: VolumeState) -> Proc[None]:
    """Move a client still inside the daemon's own service (started before scopes) into a scope of its own."""
    booted, own = yield from ask(Systemd())
    client = vs.client
    if not booted or not own.endswith(".service") or client is None or client.unit != own:
        return
    unit, description = node.next_scope(vs)
    result = yield from ask(Run(tuple(fuse_client.adopt_argv(client.pid, unit, description)), "/", node.config.mount_timeout))
    fields: dict[str, object] = {"pid": client.pid, "volume": vs.spec.key, "own": own}
    if result.exit_code == 0:
        yield Say(Level.INFO, "moved the FUSE client {pid} of {volume} out of {own} into {unit}", {**fields, "unit": unit})
        yield from watch_client(node, vs)
    else:
        fields["said"] = result.last_line or "busctl failed"
        yield Say(Level.ERROR, "the FUSE client {pid} of {volume} is still in {own} and dies with its next stop: {said}", fields)


def learn_servers(node: NodeState, vs: VolumeState, log_file: str, log_start: int) -> Proc[None]:
    """Remember the brick hosts of a fresh mount's graph: later mounts then survive the named server's absence.

    The graph also says which host each brick connection talks to, for naming the ones a partition cuts.
    """
    spec = vs.spec
    try:
        text = yield from ask(LogTail(log_file, log_start))
        vs.links, vs.log_offset = client_log.Links(), log_start
        vs.links.feed(text)
        if not node.servers.learn(spec, volfile_servers.brick_hosts(text)):
            return
        yield Say(Level.INFO, "{volume} is served by {hosts}", {"volume": spec.key, "hosts": ", ".join(node.servers.known(spec))})
        path = node.servers.path
        if path is not None:
            # Serialized, and the snapshot taken when its turn comes: an older one never lands last.
            yield Locked(("servers",), _save_servers(node, path))
    except Exception as e:  # the mount is made: a failure here costs only the memory of its servers
        yield Say(Level.WARN, "cannot remember the servers of {volume}: {error}", {"volume": spec.key, "error": e})


def _save_servers(node: NodeState, path: str) -> Proc[None]:
    yield WriteState(path, node.servers.to_text().encode())
