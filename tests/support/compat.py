"""What the tests need to run on both library sets: Debian 12's (Hypothesis 6.67, ...) and PyPI's.

Hypothesis 6.84 renamed ``characters()``'s ``blacklist_*``/``whitelist_*`` arguments to
``exclude_*``/``include_*``/``categories`` and added ``codec``; the tests use the new names.
"""

from __future__ import annotations

import inspect
from typing import Any

from hypothesis import strategies as st

_NEW_NAMES = "exclude_categories" in inspect.signature(st.characters).parameters
_OLD_NAMES = {
    "exclude_categories": "blacklist_categories",
    "exclude_characters": "blacklist_characters",
    "categories": "whitelist_categories",
    "include_characters": "whitelist_characters",
}


def characters(**kwargs: Any) -> st.SearchStrategy[str]:
    """``st.characters`` with the new argument names, on old Hypothesis too."""
    if _NEW_NAMES:
        return st.characters(**kwargs)
    if kwargs.pop("codec", None) is not None:
        raise TypeError("codec= needs Hypothesis 6.84 or later")
    return st.characters(**{_OLD_NAMES.get(k, k): v for k, v in kwargs.items()})
