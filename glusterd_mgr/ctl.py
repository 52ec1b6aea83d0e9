"""gluster-mountctl: ask the node's ganeti-gluster-mountd what it holds, or have it act.

Exit codes:

* 0 -- the call succeeded (for ``status``: and every mount is healthy);
* 1 -- the call failed (``error: <message>`` on stderr), or ``status`` found a
  mount that is degraded (state other than mounted/unmounted/busy, or a last
  error);
* 2 -- usage error (argparse's own message);
* 3 -- the daemon is not running (no socket, or nobody listening on it).

``--json`` prints the daemon's result unchanged as JSON: that output is the
stable machine contract; the human tables are not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO, TypeVar

from .client import DEFAULT_SOCKET, DEFAULT_TIMEOUT, Client, DaemonNotRunning
from .core.errors import MountdError
from .core.holders import HOLDER_KINDS
from .core.printable import printable
from .core.results import Status, VolumeStatus

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_VOLUME",
    "EXIT_FAILED",
    "EXIT_NOT_RUNNING",
    "EXIT_OK",
    "EXIT_USAGE",
    "HEALTHY_STATES",
    "PROC",
    "build_parser",
    "is_degraded",
    "main",
    "process_name",
    "render_mapping",
    "render_status",
    "volume_key",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3

DEFAULT_PORT = 24007
DEFAULT_VOLUME = "gv0"
HEALTHY_STATES = frozenset({"mounted", "unmounted", "busy"})

PROC = "/proc"


# -- argument parsing ------------------------------------------------------


N = TypeVar("N", int, float)


def _bounded(convert: Callable[[str], N], ok: Callable[[N], bool], what: str) -> Callable[[str], N]:
    """An argparse type: ``convert`` the text, and refuse it unless ``ok``, naming ``what`` was wanted."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


_positive_int = _bounded(int, lambda v: v > 0, "a positive whole number of MiB")
_port = _bounded(int, lambda v: 1 <= v <= 65535, "a TCP port (1-65535)")
_timeout = _bounded(float, lambda v: v > 0, "a positive number of seconds")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the daemon's result as JSON")


def _volume_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="Gluster server (gluster:host); '' means this node")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"glusterd port (default {DEFAULT_PORT})")
    parser.add_argument("--volume", default=DEFAULT_VOLUME, help=f"volume name (default {DEFAULT_VOLUME})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gluster-mountctl",
        description="Query and drive ganeti-gluster-mountd, the node's GlusterFS mount daemon.",
        epilog="exit codes: 0 ok, 1 failed or degraded, 2 usage, 3 daemon not running",
    )
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help=f"daemon socket (default {DEFAULT_SOCKET})")
    parser.add_argument(
        "--timeout", type=_timeout, default=DEFAULT_TIMEOUT, help=f"seconds to wait for the daemon (default {DEFAULT_TIMEOUT:g})"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("status", help="mounts, their state and holders")
    _json_flag(p)
    p.set_defaults(run=_cmd_status)

    for name, helptext in (("acquire", "add a holder to a volume, mounting it"), ("release", "remove a holder")):
        p = commands.add_parser(name, help=helptext)
        _volume_flags(p)
        p.add_argument("--kind", required=True, choices=HOLDER_KINDS, help="holder kind")
        p.add_argument("--id", required=True, dest="holder_id", metavar="ID", help="holder id")
        _json_flag(p)
        p.set_defaults(run=_cmd_acquire if name == "acquire" else _cmd_release)

    p = commands.add_parser("statvfs", help="a volume's size and free space in MiB")
    _volume_flags(p)
    _json_flag(p)
    p.set_defaults(run=_cmd_statvfs)

    p = commands.add_parser("metrics", help="the daemon's Prometheus metrics, as text")
    p.set_defaults(run=_cmd_metrics, json=False)

    disk = commands.add_parser("disk", help="disk files on a volume").add_subparsers(
        dest="disk_command", metavar="DISK_COMMAND", required=True
    )
    p = disk.add_parser("create", help="create a disk file")
    _volume_flags(p)
    p.add_argument("path", metavar="PATH", help="path relative to the volume root, e.g. ganeti/UUID.0")
    p.add_argument("size", metavar="SIZE_MIB", type=_positive_int, help="size in MiB")
    p.add_argument("--preallocate", action="store_true", help="allocate every block now")
    _json_flag(p)
    p.set_defaults(run=_cmd_disk_create)

    p = disk.add_parser("remove", help="remove a disk file")
    _volume_flags(p)
    p.add_argument("path", metavar="PATH")
    _json_flag(p)
    p.set_defaults(run=_cmd_disk_remove)

    p = disk.add_parser("grow", help="grow a disk file")
    _volume_flags(p)
    p.add_argument("path", metavar="PATH")
    p.add_argument("amount", metavar="AMOUNT_MIB", type=_positive_int, help="MiB to add")
    p.add_argument("--dryrun", action="store_true", help="check only, change nothing")
    p.add_argument("--no-backingstore", dest="backingstore", action="store_false", help="do not grow the file itself")
    _json_flag(p)
    p.set_defaults(run=_cmd_disk_grow)

    p = disk.add_parser("info", help="a disk file's size and allocation")
    _volume_flags(p)
    p.add_argument("path", metavar="PATH")
    _json_flag(p)
    p.set_defaults(run=_cmd_disk_info)
    return parser


# -- rendering -------------------------------------------------------------


def volume_key(volume: Any) -> str:
    """``host:port/volume`` as the daemon names a volume (an IPv6 host in brackets)."""
    if not isinstance(volume, dict):
        return str(volume)
    host = str(volume.get("host", ""))
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{volume.get('port', DEFAULT_PORT)}/{volume.get('volume', DEFAULT_VOLUME)}"


def process_name(pid: int, proc: str | None = None) -> str:
    """The command name of ``pid``, or ``(gone)`` when it has exited since the daemon looked."""
    proc = proc or PROC
    try:
        with open(f"{proc}/{int(pid)}/comm", encoding="utf-8", errors="replace", newline="") as f:  # a CR stays a CR
            return f.read().strip() or "?"
    except FileNotFoundError:
        return "(gone)"
    except (OSError, ValueError):
        return "?"


def is_degraded(mount: VolumeStatus) -> bool:
    return mount.get("state") not in HEALTHY_STATES or bool(mount.get("last_error")) or bool(mount.get("broken_holders"))


def _age(started: Any) -> str:
    if not isinstance(started, (int, float)):
        return "?"
    return f"{max(0, int(time.time() - started))} s"


def _line(out: TextIO, text: str) -> None:
    """One line of a table: what the daemon and /proc report is others' text, shown with its control characters escaped."""
    out.write(printable(text) + "\n")


def render_status(result: Status, out: TextIO, proc: str | None = None) -> None:
    mounts = result.get("mounts") or []
    _line(out, f"ganeti-gluster-mountd {result.get('version', '?')}: {len(mounts)} mount(s)")
    for mount in mounts:
        holders = mount.get("holders") or []
        _line(out, "")
        _line(out, volume_key(mount.get("volume")))
        _line(out, f"  mountpoint: {mount.get('mountpoint', '?')}")
        state = str(mount.get("state", "?"))
        _line(out, f"  state:      {state}{'  (DEGRADED)' if is_degraded(mount) else ''}")
        _line(out, f"  holders:    {len(holders)}")
        for holder in holders:
            if isinstance(holder, dict):
                _line(out, f"    {holder.get('kind', '?')}:{holder.get('id', '?')}")
            else:
                _line(out, f"    {holder}")
        if mount.get("last_error"):
            _line(out, f"  last error: {mount['last_error']}")
        broken = mount.get("broken_holders") or []
        if broken:
            _line(out, f"  BROKEN:     {len(broken)} holder(s) lost their disks with a dead FUSE client")
            for holder in broken:
                if isinstance(holder, dict):
                    _line(out, f"    {holder.get('kind', '?')}:{holder.get('id', '?')}")
            _line(out, f"  action:     {mount.get('action') or 'restart those instances fully'}")
        if state == "disconnected":
            servers = ", ".join(str(s) for s in mount.get("unreachable_servers") or []) or "(its log names none yet)"
            _line(out, f"  disconnected: for {_age(mount.get('disconnected_since'))}, cannot reach {servers}")
            _line(out, "  action:     none on this node: the mount stays and reconnects by itself; restore the network to the servers")
        claiming = mount.get("clients_claiming") or []
        if claiming:
            _line(out, f"  WARNING:    {len(claiming)} FUSE clients claim this mountpoint: {', '.join(str(p) for p in claiming)}")
        client = mount.get("client")
        if isinstance(client, dict):
            _line(
                out,
                f"  client:     pid {client.get('pid', '?')}, {int(client.get('resident_memory_bytes', 0)) >> 20} MiB, "
                f"{client.get('threads', '?')} threads, {client.get('open_fds', '?')} fds, up {_age(client.get('start_time_seconds'))}, "
                f"oom_score_adj {client.get('oom_score_adj', '?')}, unit {client.get('unit') or '-'}",
            )
        if state == "busy":
            pids = mount.get("busy_pids") or []
            if pids:
                _line(out, "  busy pids:")
                for pid in pids:
                    _line(out, f"    {pid} {process_name(pid, proc)}")
            else:
                _line(out, "  busy pids:  none reported")


def _scalar(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def render_mapping(result: Any, out: TextIO) -> None:
    """A result object as ``key: value`` lines; anything else as one line."""
    if isinstance(result, dict):
        if not result:
            _line(out, "ok")
            return
        width = max(len(str(k)) for k in result) + 1
        for key in sorted(result):
            value = volume_key(result[key]) if key == "volume" else _scalar(result[key])
            _line(out, f"{str(key) + ':':<{width}} {value}")
    elif result is None:
        _line(out, "ok")
    else:
        _line(out, _scalar(result))


def _print_json(result: Any, out: TextIO) -> None:
    out.write(json.dumps(result, indent=2, sort_keys=True) + "\n")


# -- commands --------------------------------------------------------------


def _volume(args: argparse.Namespace) -> dict[str, Any]:
    return {"host": args.host, "port": args.port, "volume": args.volume}


def _holder(args: argparse.Namespace) -> dict[str, str]:
    return {"kind": args.kind, "id": args.holder_id}


def _cmd_status(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    result = client.status()
    if args.json:
        _print_json(result, out)
    else:
        render_status(result, out)
    mounts = result.get("mounts") or []
    return EXIT_FAILED if any(isinstance(m, dict) and is_degraded(m) for m in mounts) else EXIT_OK


def _plain(call: Callable[[Client, argparse.Namespace], Any]) -> Callable[[Client, argparse.Namespace, TextIO], int]:
    def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
        result = call(client, args)
        if args.json:
            _print_json(result, out)
        else:
            render_mapping(result, out)
        return EXIT_OK

    return run


_cmd_acquire = _plain(lambda c, a: c.acquire(_volume(a), _holder(a)))
_cmd_release = _plain(lambda c, a: c.release(_volume(a), _holder(a)))
_cmd_statvfs = _plain(lambda c, a: c.statvfs(_volume(a)))
_cmd_disk_create = _plain(lambda c, a: c.disk_create(_volume(a), a.path, a.size, preallocate=a.preallocate))
_cmd_disk_remove = _plain(lambda c, a: c.disk_remove(_volume(a), a.path))
_cmd_disk_grow = _plain(lambda c, a: c.disk_grow(_volume(a), a.path, a.amount, dryrun=a.dryrun, backingstore=a.backingstore))
_cmd_disk_info = _plain(lambda c, a: c.disk_info(_volume(a), a.path))


def _cmd_metrics(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    text = client.metrics()
    out.write(text if text.endswith("\n") or not text else text + "\n")
    return EXIT_OK


# -- entry point -----------------------------------------------------------


def _one_line(text: str) -> str:
    return printable(" ".join(str(text).split()))


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help exits 0, a usage error 2: report, never raise
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        client = Client(args.socket, timeout=args.timeout)
        code: int = args.run(client, args, sys.stdout)
        sys.stdout.flush()
        return code
    except DaemonNotRunning as e:
        print(_one_line(e.message), file=sys.stderr)
        return EXIT_NOT_RUNNING
    except MountdError as e:
        print(f"error: {_one_line(e.message)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback
        print(f"error: unexpected {type(e).__name__}: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
