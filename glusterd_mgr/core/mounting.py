"""Making a volume mounted at its mountpoint: adopt, recover or mount afresh, and say why a mount failed.

Each runs under the mountpoint's lock (``locked_ensure``); the decision
itself is ``mounts.decide``, over what ``health`` reads.
"""

from __future__ import annotations

from . import fuse_client
from .client_care import learn_servers, protect_client
from .effects import (
    Clients,
    Kill,
    Level,
    Locked,
    LogSize,
    LogTail,
    MakeMountpoint,
    Metric,
    Now,
    Observe,
    Proc,
    ProcessResult,
    Run,
    Say,
    SettleLeftovers,
    Systemd,
    TcpProbe,
    ask,
)
from .errors import MountdError, MountFailed, OperationTimeout, VolumeConflict
from .health import disconnected, is_ours, mark_broken, ours_in, probe, reconnected, stack, watch_client
from .mounts import CLIENT, Action, Probe, UnmountMode, client_argv, decide, diagnose_log, log_file_for, umount_argv
from .policy import check_storage_dir
from .state import UP, NodeState, Phase, VolumeState, mount_key
from .volume import VolumeSpec

__all__ = ["ensure_mounted", "locked_ensure", "remount_if_held"]


def locked_ensure(node: NodeState, vs: VolumeState) -> Proc[bool]:
    """``ensure_mounted`` under the mountpoint's lock."""
    return (yield from ask(Locked((mount_key(vs.mountpoint),), ensure_mounted(node, vs))))


def remount_if_held(node: NodeState, vs: VolumeState) -> Proc[None]:
    """Mount a held volume again once the mountpoint's lock is free (unless its last holder left meanwhile)."""

    def remount() -> Proc[None]:
        if vs.count() > 0:  # the last holder may have left while we waited for the lock
            yield from ensure_mounted(node, vs)

    yield Locked((mount_key(vs.mountpoint),), remount())


def ensure_mounted(node: NodeState, vs: VolumeState) -> Proc[bool]:
    """Make the volume mounted at its mountpoint (under its lock); True if it mounted now.

    The first time in this process, also settle what disk calls cut short by a crash left behind.
    """
    mounted_now = yield from _make_mounted(node, vs)
    if not vs.leftovers_settled:
        folder = tuple(node.config.disk_folder.split("/"))
        try:
            settled = yield from ask(SettleLeftovers(vs.mountpoint, folder, node.config.fs_timeout))
        except MountdError as e:
            yield Say(Level.WARN, "cannot settle what disk calls cut short left on {volume}: {error}", {"volume": vs.spec.key, "error": e})
        else:
            vs.leftovers_settled = True
            if settled:
                yield Say(Level.INFO, "settled {n} leftover(s) of disk calls cut short: {what}", {"n": len(settled), "what": settled})
    return mounted_now


def _make_mounted(node: NodeState, vs: VolumeState) -> Proc[bool]:
    config = node.config
    check_storage_dir(vs.mountpoint, config.whitelist, config.whitelist_file)
    for other in node.volumes.values():
        if other is not vs and other.mountpoint == vs.mountpoint and other.count() > 0:
            raise VolumeConflict(
                f"{vs.mountpoint} holds volume {other.spec.key} for {other.count()} holder(s); "
                f"release them before using {vs.spec.key} there",
                mountpoint=vs.mountpoint,
            )
    records = yield from stack(vs.mountpoint)
    ours = bool(records) and (yield from is_ours(vs.spec, records[-1]))
    answered = (yield from probe(node, vs)) if ours else None
    decision = decide(records, ours, answered)
    if decision.action is Action.CONFLICT:
        top = decision.top
        assert top is not None
        raise VolumeConflict(
            f"{vs.mountpoint} already has {top.source} ({top.fstype}) mounted, not {vs.spec.key}; "
            f"unmount it or point gluster_storage_dir elsewhere",
            mountpoint=vs.mountpoint,
            mounted=top.source,
        )
    if decision.action is Action.UNREACHABLE:
        raise (yield from disconnected(node, vs))
    if decision.action is Action.WAIT:
        vs.enter(Phase.HUNG)
        raise OperationTimeout(f"{vs.spec.key} is mounted on {vs.mountpoint} but does not answer; is the server frozen?")
    if decision.action is Action.ADOPT:
        if vs.phase is Phase.DISCONNECTED:
            yield from reconnected(vs)
        elif vs.phase not in UP:
            yield Say(Level.INFO, "adopting the existing mount of {volume} on {mountpoint}", vs.where())
        vs.enter(Phase.MOUNTED)
        return False
    if decision.action is Action.RECOVER:
        yield Say(Level.WARN, "{volume} on {mountpoint} is dead (ENOTCONN): detaching it and mounting afresh", vs.where())
        yield Observe(Metric.RECOVERIES, vs.spec.key)
        vs.enter(Phase.DEAD)
        yield from mark_broken(vs, "its FUSE client died")
        yield Run(tuple(umount_argv(vs.mountpoint, UnmountMode.LAZY)), "/", config.mount_timeout)
        if (yield from ours_in(vs.spec, vs.mountpoint)):
            raise MountFailed(f"could not detach the dead mount of {vs.spec.key} on {vs.mountpoint}")
    yield from _mount(node, vs)
    return True


def _mount(node: NodeState, vs: VolumeState) -> Proc[None]:
    """Start the FUSE client (in a scope of its own where systemd runs); the mount table and a statvfs judge it.

    The client's parent exits once the mount is made (0) or has failed; a client that failed can still
    show its mount for a moment while it tears it down, so only a clean exit with a mount that answers counts.
    """
    spec, mountpoint, config = vs.spec, vs.mountpoint, node.config
    yield Observe(Metric.MOUNT_ATTEMPTS, spec.key)
    started = yield from ask(Now())
    try:
        yield MakeMountpoint(mountpoint, config.fs_timeout)
        log_file = log_file_for(config.log_dir, mountpoint)
        log_start = yield from ask(LogSize(log_file))
        argv = client_argv(spec, mountpoint, log_file, node.servers.backups(spec, config.backup_servers), config.client_options)
        booted, _own = yield from ask(Systemd())
        if booted:
            argv = fuse_client.scoped_argv(argv, *node.next_scope(vs))
        result = yield from ask(Run(tuple(argv), "/", config.mount_timeout))
        note = ""
        if (yield from ours_in(spec, mountpoint)):
            # A new client answers once it has its volume file, which may take it most of the mount timeout
            # when the first server it asks is unreachable: its first answer gets what is left of that time.
            left = config.mount_timeout - ((yield from ask(Now())) - started)
            answered = (yield from probe(node, vs, max(config.probe_timeout, left))) if result.exit_code == 0 else None
            if answered is Probe.OK:
                vs.enter(Phase.MOUNTED, None)
                yield Observe(Metric.MOUNT_SECONDS, spec.key, (yield from ask(Now())) - started)
                yield Say(Level.INFO, "mounted {volume} on {mountpoint}", vs.where())
                yield from watch_client(node, vs, fresh=True)
                yield from protect_client(node, vs)
                yield from learn_servers(node, vs, log_file, log_start)
                return
            # Leave no half-made mount behind.
            yield Run(tuple(umount_argv(mountpoint, UnmountMode.LAZY)), "/", config.mount_timeout)
            made = f"did not answer ({answered.value})" if answered else "was left by a client that failed"
            note = f"the mount it made {made} and was detached"
        # The FUSE client daemonizes into a session of its own, so the timeout did not reach it.
        # Nothing of ours is mounted here now (we only mount on an empty or detached mountpoint,
        # and detached what this attempt made), so every client still serving this path is an orphan.
        orphans = [client.pid for client in (yield from ask(Clients(mountpoint)))]
        if orphans:
            yield Kill(tuple(orphans))
            fields: dict[str, object] = {"pids": orphans, "volume": spec.key}
            yield Say(Level.WARN, "killed the FUSE client(s) {pids} left by the failed mount of {volume}", fields)
        log_text = yield from ask(LogTail(log_file, log_start))
        message = yield from _diagnose(node, spec, mountpoint, result, log_text, note)
        raise MountFailed(message, log_file=log_file)
    except MountdError as e:
        yield Observe(Metric.MOUNT_FAILURES, spec.key)
        vs.enter(Phase.FAILED, e.message)
        raise


def _diagnose(node: NodeState, spec: VolumeSpec, mountpoint: str, result: ProcessResult, log_text: str, note: str) -> Proc[str]:
    """A cause a person can act on, from the client log and a TCP probe."""
    head = f"mounting {spec.key} on {mountpoint} failed"
    if result.timed_out:
        head += f" (the {CLIENT} client did not finish within {node.config.mount_timeout:g} s and was killed)"
    elif result.exit_code:
        head += f" ({CLIENT} exited with {result.exit_code})"
    causes: list[str] = [note] if note else []
    reason = yield from ask(TcpProbe(spec.mount_host, spec.port, 5.0))
    if reason is not None:
        causes.append(f"cannot reach {spec.mount_host}:{spec.port}: {reason}")
    from_log = diagnose_log(spec, log_text)
    if from_log and not (reason and "refused" in from_log):
        causes.append(from_log)
    said = result.last_line
    tail = f"; {CLIENT} said: {said}" if said else ""
    return f"{head}: {'; '.join(causes) if causes else 'no known cause; see the client log'}{tail}"
