"""The state folder, checked at start: root's (the daemon's user's) and private, or the daemon does not start.

Whoever can write the folder can rewrite the holder journal, or plant a symlink where the daemon writes.
The check acts on the descriptor it opened (``O_DIRECTORY|O_NOFOLLOW``, then ``fstat``, ``fchmod``), never
on the name twice, so the folder cannot be swapped between the look and the act.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat

from ..core.errors import StateError

__all__ = ["MODE", "open_state_dir"]

MODE = 0o700


def _user(uid: int) -> str:
    """A user's name, or its uid when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def open_state_dir(path: str) -> tuple[int, str | None]:
    """The state folder's descriptor (made if missing), and what was repaired (its mode), or None.

    A symlink, something not a folder, or a folder another user owns is refused with a ``StateError``
    that says what to do; a folder of ours that others may enter is made private.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        os.mkdir(path, MODE)
    except FileExistsError:
        pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        what = "a symbolic link" if os.path.islink(path) else "not a folder"
        raise StateError(f"the state folder {path} is {what}: make it a folder owned by root, mode 0700, and start again") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            me = _user(os.geteuid())
            raise StateError(
                f"the state folder {path} is owned by uid {st.st_uid} ({_user(st.st_uid)}), not by {me}: its owner could "
                f"rewrite the holder journal. Check what is in it, then chown {me} {path}; chmod 0700 {path}; and start again"
            )
        mode = stat.S_IMODE(st.st_mode)
        if mode == MODE:
            return fd, None
        os.fchmod(fd, MODE)
        return fd, f"the state folder {path} was mode {mode:04o}; made it {MODE:04o}"
    except BaseException:
        os.close(fd)
        raise
