"""Pure tests of mount decisions, mount/umount commands, client log names and failure diagnosis."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from glusterd_mgr.core import fuse_client
from glusterd_mgr.core.mountinfo import MountRecord
from glusterd_mgr.core.mounts import Action, Decision, Probe, UnmountMode, client_argv, decide, diagnose_log, log_file_for, umount_argv
from glusterd_mgr.core.volume import VolumeSpec, parse_source

SPEC = VolumeSpec("10.0.0.2", 24007, "gv1")
MP = "/run/ganeti/gluster"


def record(mount_id: int, source: str, fstype: str = "fuse.glusterfs", mountpoint: str = MP) -> MountRecord:
    return MountRecord(mount_id, 27, 0, mount_id, "/", mountpoint, ("rw", "relatime"), (), fstype, source, ("rw",))


OURS = record(120, "10.0.0.2:/gv1")
OURS_AGAIN = record(125, "10.0.0.2:/gv1")
OTHER_VOLUME = record(130, "10.0.0.2:/gv0")
OTHER_SERVER = record(131, "10.0.0.3:/gv1")
TMPFS = record(132, "tmpfs", "tmpfs")
NFS_SAME_SOURCE = record(133, "10.0.0.2:/gv1", "nfs4")


def by_source(r: MountRecord) -> bool:
    """A stand-in for the engine's check: same host spelling and volume name."""
    source = parse_source(r.source)
    return source is not None and source.host == SPEC.host and source.volume == SPEC.volume


def always(r: MountRecord) -> bool:
    return True


@pytest.mark.parametrize(
    "stack, is_ours, probe, want",
    [
        ([], by_source, None, Decision(Action.MOUNT)),
        ([], by_source, Probe.DEAD, Decision(Action.MOUNT)),
        ([OTHER_VOLUME], by_source, None, Decision(Action.CONFLICT, OTHER_VOLUME)),
        ([OTHER_SERVER], by_source, Probe.OK, Decision(Action.CONFLICT, OTHER_SERVER)),
        ([TMPFS], by_source, None, Decision(Action.CONFLICT, TMPFS)),
        ([OURS], by_source, Probe.OK, Decision(Action.ADOPT, OURS)),
        ([OURS], by_source, None, Decision(Action.ADOPT, OURS)),
        ([OURS], by_source, Probe.DEAD, Decision(Action.RECOVER, OURS)),
        ([OURS], by_source, Probe.DISCONNECTED, Decision(Action.UNREACHABLE, OURS)),
        ([OURS], by_source, Probe.HUNG, Decision(Action.WAIT, OURS)),
        # ours at the bottom, something else on top: a lookup sees the top one
        ([OURS, TMPFS], by_source, Probe.OK, Decision(Action.CONFLICT, TMPFS)),
        ([OURS, OTHER_VOLUME], by_source, None, Decision(Action.CONFLICT, OTHER_VOLUME)),
        ([OURS, OTHER_SERVER], by_source, Probe.DEAD, Decision(Action.CONFLICT, OTHER_SERVER)),
        # something else at the bottom, ours on top: the top decides
        ([TMPFS, OURS], by_source, Probe.OK, Decision(Action.ADOPT, OURS)),
        ([OTHER_VOLUME, OURS], by_source, Probe.DEAD, Decision(Action.RECOVER, OURS)),
        ([OURS, OURS_AGAIN], by_source, Probe.HUNG, Decision(Action.WAIT, OURS_AGAIN)),
        # a mount that is not glusterfs is never ours, whatever the caller says
        ([TMPFS], always, Probe.OK, Decision(Action.CONFLICT, TMPFS)),
        ([NFS_SAME_SOURCE], always, Probe.OK, Decision(Action.CONFLICT, NFS_SAME_SOURCE)),
        ([OURS, NFS_SAME_SOURCE], by_source, None, Decision(Action.CONFLICT, NFS_SAME_SOURCE)),
    ],
)
def test_decide(stack: list[MountRecord], is_ours: Callable[[MountRecord], bool], probe: Probe | None, want: Decision) -> None:
    assert decide(stack, bool(stack) and is_ours(stack[-1]), probe) == want


# -- commands ---------------------------------------------------------------------


def _client(*servers: str, port: int = 24007, volume: str = "gv0", options: tuple[str, ...] = ()) -> list[str]:
    head = ["glusterfs", "--process-name", "fuse", f"--volfile-server={servers[0]}", f"--volfile-server-port={port}"]
    backups = [f"--volfile-server={s}" for s in servers[1:]]
    return [*head, *backups, f"--volfile-id=/{volume}", "--log-file=/var/log/l.log", *options, MP]


@pytest.mark.parametrize(
    "spec, backups, options, argv",
    [
        (SPEC, (), (), _client("10.0.0.2", volume="gv1")),
        (VolumeSpec("gs1", 24008, "gv0"), ("gs2", "gs3"), (), _client("gs1", "gs2", "gs3", port=24008)),
        (VolumeSpec(""), (), (), _client("127.0.0.1")),
        (VolumeSpec("fe80::1"), (), (), _client("fe80::1")),
        (SPEC, (), ("--reader-thread-count=4",), _client("10.0.0.2", volume="gv1", options=("--reader-thread-count=4",))),
    ],
)
def test_client_argv(spec: VolumeSpec, backups: tuple[str, ...], options: tuple[str, ...], argv: list[str]) -> None:
    """As mount.glusterfs would start the client; the mountpoint last, where clients are found by it."""
    got = client_argv(spec, MP, "/var/log/l.log", backups, options)
    assert got == argv
    assert fuse_client.client_mount(got) == (spec.volume, MP)


@pytest.mark.parametrize(
    "mode, argv",
    [(UnmountMode.PLAIN, ["umount", MP]), (UnmountMode.LAZY, ["umount", "-l", MP])],
)
def test_umount_argv(mode: UnmountMode, argv: list[str]) -> None:
    assert umount_argv(MP, mode) == argv


@pytest.mark.parametrize(
    "mountpoint, log_file",
    [
        ("/run/ganeti/gluster", "/var/log/glusterfs/run-ganeti-gluster.log"),
        ("/run/ganeti/gluster/", "/var/log/glusterfs/run-ganeti-gluster.log"),
        ("/srv/gluster", "/var/log/glusterfs/srv-gluster.log"),
        ("/mnt", "/var/log/glusterfs/mnt.log"),
    ],
)
def test_log_file_for(mountpoint: str, log_file: str) -> None:
    assert log_file_for("/var/log/glusterfs", mountpoint) == log_file


# -- diagnosis of the client log ---------------------------------------------------------

MISSING_VOLUME_LOG = """\
[2024-05-02 10:11:12.345678 +0000] I [MSGID: 100030] [glusterfsd.c:2683:main] 0-/usr/sbin/glusterfs: Started running version [{arg=/usr/sbin/glusterfs}, {version=10.3}, {cmdlinestr=/usr/sbin/glusterfs --process-name fuse --volfile-server=10.0.0.2 --volfile-server-port=24007 --volfile-id=/nosuch /run/ganeti/gluster}]
[2024-05-02 10:11:12.347000 +0000] I [glusterfsd.c:2418:daemonize] 0-glusterfs: Pid of current running process is 4242
[2024-05-02 10:11:12.360000 +0000] E [glusterfsd-mgmt.c:2138:mgmt_getspec_cbk] 0-glusterfs: failed to get the 'volume file' from server
[2024-05-02 10:11:12.360100 +0000] E [glusterfsd-mgmt.c:2371:mgmt_getspec_cbk] 0-mgmt: failed to fetch volume file (key:/nosuch)
[2024-05-02 10:11:12.360500 +0000] W [glusterfsd.c:1427:cleanup_and_exit] (-->/lib/x86_64-linux-gnu/libgfrpc.so.0(+0xf3b1) [0x7f] -->/usr/sbin/glusterfs(mgmt_getspec_cbk+0x5e8) [0x55] -->/usr/sbin/glusterfs(cleanup_and_exit+0x54) [0x55] ) 0-: received signum (0), shutting down
"""  # noqa: E501

BRICKS_DOWN_LOG = """\
[2024-05-02 10:20:00.000000 +0000] I [MSGID: 114020] [client.c:2336:notify] 0-gv1-client-0: parent translators are ready, attempting connect on transport []
[2024-05-02 10:20:00.010000 +0000] E [MSGID: 114058] [client-handshake.c:1193:client_query_portmap_cbk] 0-gv1-client-0: failed to get the port number for remote subvolume. Please run gluster volume status on server to see if brick process is running []
[2024-05-02 10:20:00.010100 +0000] I [MSGID: 114018] [client.c:2242:client_rpc_notify] 0-gv1-client-0: disconnected from client, process will keep trying to connect glusterd until brick's port is available [{conn-name=gv1-client-0}]
"""  # noqa: E501

DNS_LOG = """\
[2024-05-02 10:30:00.000000 +0000] E [MSGID: 101075] [common-utils.c:520:gf_resolve_ip6] 0-resolver: error in getaddrinfo [{family=2}, {ret=Name or service not known}]
[2024-05-02 10:30:00.000100 +0000] E [name.c:265:af_inet_client_get_remote_sockaddr] 0-glusterfs: DNS resolution failed on host nosuchhost
"""  # noqa: E501

REFUSED_LOG = """\
[2024-05-02 10:40:00.000000 +0000] E [socket.c:3531:socket_connect_finish] 0-glusterfs: connection to 10.0.0.2:24007 failed (Connection refused); disconnecting socket
[2024-05-02 10:40:00.000100 +0000] I [glusterfsd-mgmt.c:2762:mgmt_rpc_notify] 0-glusterfsd-mgmt: Exhausted all volfile servers
"""  # noqa: E501

UNREACHABLE_LOG = """\
[2024-05-02 10:50:00.000000 +0000] E [socket.c:3625:socket_connect] 0-gv1-client-0: connection attempt on 10.0.0.9:49152 failed, (No route to host)
"""  # noqa: E501

HEALTHY_LOG = """\
[2024-05-02 11:00:00.000000 +0000] I [MSGID: 100030] [glusterfsd.c:2683:main] 0-/usr/sbin/glusterfs: Started running version [{arg=/usr/sbin/glusterfs}, {version=10.3}]
[2024-05-02 11:00:00.100000 +0000] I [MSGID: 114046] [client-handshake.c:857:client_setvolume_cbk] 0-gv1-client-0: Connected, attached to remote volume [{conn-name=gv1-client-0}, {remote_subvol=/bricks/gv1}]
[2024-05-02 11:00:00.200000 +0000] I [fuse-bridge.c:5296:fuse_init] 0-glusterfs-fuse: FUSE inited with protocol versions: glusterfs 7.24 kernel 7.37
"""  # noqa: E501


@pytest.mark.parametrize(
    "log_text, diagnosis",
    [
        (MISSING_VOLUME_LOG, "volume 'gv1' does not exist on 10.0.0.2:24007"),
        (
            "E [glusterfsd-mgmt.c:2371:mgmt_getspec_cbk] 0-mgmt: failed to fetch volume file (key:/nosuch)",
            "volume 'gv1' does not exist on 10.0.0.2:24007",
        ),
        (
            "E [glusterd-handshake.c:1200:server_getspec] 0-glusterd: Volume nosuch does not exist",
            "volume 'gv1' does not exist on 10.0.0.2:24007",
        ),
        (
            BRICKS_DOWN_LOG,
            "volume 'gv1' is not started, or its bricks are down (run 'gluster volume status gv1' on 10.0.0.2)",
        ),
        (DNS_LOG, "the host name '10.0.0.2' does not resolve"),
        (REFUSED_LOG, "10.0.0.2:24007 refused the connection (is glusterd running?)"),
        (UNREACHABLE_LOG, "the client could not reach the volume's bricks"),
        (
            "W [fuse-bridge.c:1000:fuse_err_cbk] 0-glusterfs-fuse: 12: STAT() / => -1 (Transport endpoint is not connected)",
            "the client could not reach the volume's bricks",
        ),
        (HEALTHY_LOG, None),
        ("", None),
    ],
)
def test_diagnose_log(log_text: str, diagnosis: str | None) -> None:
    assert diagnose_log(SPEC, log_text) == diagnosis


def test_diagnosis_prefers_the_missing_volume_over_later_symptoms() -> None:
    text = REFUSED_LOG + MISSING_VOLUME_LOG
    assert diagnose_log(SPEC, text) == "volume 'gv1' does not exist on 10.0.0.2:24007"


def test_diagnosis_names_this_node_for_an_empty_host() -> None:
    assert diagnose_log(VolumeSpec("", 24010, "data"), REFUSED_LOG) == "127.0.0.1:24010 refused the connection (is glusterd running?)"
