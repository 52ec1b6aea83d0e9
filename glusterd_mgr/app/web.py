"""The daemon's twisted.web sites: quiet, without tracebacks, each serving a few named resources."""

from __future__ import annotations

from typing import Any, cast

from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

__all__ = ["QuietSite", "site"]


class QuietSite(Site):
    """No access log: the RPC metrics count every call, and journald need not hold each scrape.

    Nor form parsing: JSON-RPC never posts forms, and twisted.web's Content-Type parse alone
    cost more than validating the params.
    """

    noisy = False

    def __init__(self, resource: Any, **kwargs: Any) -> None:
        try:
            super().__init__(resource, parsePOSTFormSubmission=False, **kwargs)  # type: ignore[no-untyped-call]
        except TypeError:  # Twisted before the option: it parses forms, which costs time only
            super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call]

    def log(self, request: Any) -> None:
        pass


def site(children: dict[bytes, Resource], **kwargs: Any) -> QuietSite:
    """A site whose root holds ``children``; ``kwargs`` go to ``Site`` (e.g. ``reactor``, ``timeout``)."""
    root = Resource()
    for name, child in children.items():
        root.putChild(name, cast(IResource, child))
    made = QuietSite(root, **kwargs)
    made.displayTracebacks = False
    return made
