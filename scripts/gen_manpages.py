"""Man pages of ganeti-gluster-mountd(8) and gluster-mountctl(8), made from the programs' own --help.

    python3 scripts/gen_manpages.py OUT_DIR     (run from the repo, as debian/rules does)

The options sections are argparse's help text verbatim, so a page never says other than
``--help``; a few hand-written paragraphs around them say what the help cannot (files, exit codes).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glusterd_mgr import __version__, ctl
from glusterd_mgr.app import settings

# dpkg-buildpackage sets SOURCE_DATE_EPOCH from debian/changelog: the same tree gives the same pages.
DATE = time.strftime("%Y-%m-%d", time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time()))))


def roff_text(text: str) -> str:
    """Plain text safe inside a roff no-fill block: no backslash escapes, no request lines."""
    out = []
    for raw in text.rstrip("\n").split("\n"):
        line = raw.replace("\\", "\\e")
        out.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(out)


def verbatim(text: str) -> str:
    return ".nf\n" + roff_text(text) + "\n.fi\n"


def daemon_help() -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        settings.parse_args(["--help"])
    return buf.getvalue()


def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(walk(sub))
    return found


def page(name: str, summary: str, body: str) -> str:
    head = f'.TH {name.upper()} 8 "{DATE}" "{name} {__version__}" "System Administration"\n'
    return head + f".SH NAME\n{name} \\- {summary}\n" + body


def daemon_page() -> str:
    body = (
        ".SH DESCRIPTION\n"
        "The node-side storage daemon for Ganeti clusters whose instance disks live on a GlusterFS volume.\n"
        "It owns every Gluster FUSE mount of the node: it mounts a volume for its first holder, counts holders\n"
        "in a durable journal, and attempts one unmount when the last one leaves.  It adopts the mounts it finds\n"
        "at start, so a restart never takes a disk away from a running guest.  It is run by systemd\n"
        "(ganeti-gluster-mountd.service, Type=notify) and serves JSON-RPC 2.0 on a root-only Unix socket.\n"
        ".PP\nEvery flag can also be set in the TOML file given with \\fB\\-\\-config\\fR (same names, with - or _); a flag wins.\n"
        ".SH OPTIONS\n" + verbatim(daemon_help()) + ".SH FILES\n"
        ".TP\n/etc/ganeti/gluster-mountd.toml\nthe settings the unit passes with \\fB\\-\\-config\\fR\n"
        ".TP\n/run/ganeti-gluster-mountd/rpc.sock\nthe JSON-RPC socket (mode 0600)\n"
        ".TP\n/var/lib/ganeti-gluster-mountd/holders.journal\nthe durable holder table\n"
        ".TP\n/etc/ganeti/file-storage-paths\nGaneti's whitelist; the mount folder must be listed in it\n"
        ".SH SEE ALSO\n\\fBgluster-mountctl\\fR(8), /usr/share/doc/ganeti-gluster-mountd/README.md.gz\n"
    )
    return page("ganeti-gluster-mountd", "GlusterFS mount daemon for Ganeti nodes", body)


def ctl_page() -> str:
    parsers = walk(ctl.build_parser())
    body = ".SH DESCRIPTION\nQueries and drives the node's \\fBganeti-gluster-mountd\\fR(8) over its socket.  Human output by default;\n"
    body += "\\fB\\-\\-json\\fR is the stable machine contract.\n.SH OPTIONS\n" + verbatim(parsers[0].format_help())
    body += ".SH COMMANDS\n"
    for sub in parsers[1:]:
        body += f".SS {sub.prog.removeprefix('gluster-mountctl ')}\n" + verbatim(sub.format_help())
    body += (
        ".SH EXIT STATUS\n0 healthy or done, 1 degraded or a failed call, 2 usage, 3 the daemon is not running.\n"
        ".SH SEE ALSO\n\\fBganeti-gluster-mountd\\fR(8)\n"
    )
    return page("gluster-mountctl", "query and drive ganeti-gluster-mountd", body)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):  # --help (or a typo) is no output folder
        print(__doc__, file=sys.stderr)
        return 2
    os.makedirs(argv[0], exist_ok=True)
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width: make pages reproducible
    for name, make in (("ganeti-gluster-mountd.8", daemon_page), ("gluster-mountctl.8", ctl_page)):
        with open(os.path.join(argv[0], name), "w") as f:
            f.write(make())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
