"""Unit tests run as nobody from a read-only checkout: Hypothesis then keeps its examples in memory."""

from __future__ import annotations

import os

from hypothesis import settings

if not os.access(".", os.W_OK):
    settings.register_profile("read-only", database=None)
    settings.load_profile("read-only")
