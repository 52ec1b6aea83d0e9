"""``ganeti-gluster-mountd``: the console script's and ``python3 -m glusterd_mgr``'s entry point (the work is in ``app/main.py``)."""

from __future__ import annotations

from .app.main import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
