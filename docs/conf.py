"""Sphinx configuration of ganeti-gluster-mountd's documentation (HTML and man pages).

Built with Debian's python3-sphinx and its alabaster theme, warnings as errors:
``sphinx-build -W -b html docs OUT`` and ``sphinx-build -W -b man docs OUT``.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from glusterd_mgr import __version__

project = "ganeti-gluster-mountd"
author = "ganeti-gluster-mountd maintainers"
copyright = "ganeti-gluster-mountd maintainers"
version = release = __version__
extensions: list[str] = []
exclude_patterns = ["_build"]
# The Debian package ships the operator's pages, not the development notebook (sphinx-build -t package).
if tags.has("package"):  # type: ignore[name-defined]  # noqa: F821 (Sphinx defines tags while reading this file)
    exclude_patterns.append("development/*")
    suppress_warnings = ["toc.excluded"]
html_theme = "alabaster"
html_static_path: list[str] = []
# dpkg-buildpackage sets SOURCE_DATE_EPOCH: the same tree gives the same pages (Sphinx honours it).
today_fmt = "%Y-%m-%d"
man_make_section_directory = False
man_pages = [
    ("man/ganeti-gluster-mountd", "ganeti-gluster-mountd", "the GlusterFS mount daemon of a Ganeti node", [author], 8),
    ("man/gluster-mountctl", "gluster-mountctl", "query and drive ganeti-gluster-mountd", [author], 8),
    ("man/gluster-mountd.toml", "gluster-mountd.toml", "configuration file of ganeti-gluster-mountd", [author], 5),
]
