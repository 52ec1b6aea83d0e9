"""Shell blocks of the operator's documentation, run as written by the tests and the lab.

A block sits between ``.. NAME:begin`` and ``.. NAME:end`` comments in ``docs/install.rst``, as one
``.. code-block:: sh``: the steps an operator follows are the steps that are tested.
"""

from __future__ import annotations

import os
import re
import textwrap

INSTALL_DOC = os.path.join("docs", "install.rst")


def shell_block(name: str, checkout: str) -> str:
    """The shell of the block ``name`` in ``checkout``'s install page."""
    with open(os.path.join(checkout, INSTALL_DOC)) as f:
        text = f.read()
    found = re.search(rf"^\s*\.\. {name}:begin\n(.*?)^\s*\.\. {name}:end$", text, re.S | re.M)
    assert found, f"{INSTALL_DOC} has no {name} block"
    body = textwrap.dedent(found.group(1)).strip()
    assert body.startswith(".. code-block:: sh\n"), body
    return textwrap.dedent(body.removeprefix(".. code-block:: sh\n")).strip() + "\n"
