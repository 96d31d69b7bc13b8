"""JSON-LD without the network: the offline document loader for every JSON-LD operation.

The server never fetches a URL a client chose (issue 14). Every ``@context`` a client may
name resolves here, from files shipped in ``traceability/standards/epcis``:

- the EPCIS 2.0 context under each URL GS1 publishes it at (``ref.gs1.org/standards/epcis``
  with and without the ``2.0.0`` version, ``gs1.github.io/EPCIS``, over https and http)
  resolves to ``epcis-context-inline.jsonld``: GS1's context with its CBV sub-contexts
  inlined, byte for byte the copy ``epcis_event_hash_generator`` ships for the 2.0.0 URL,
  so event hashes are the reference library's;
- the CBV and GS1 sub-contexts the official context names
  (``https://gs1.github.io/EPCIS/cbv-context-bizstep.jsonld``…) resolve to GS1's files of
  the same name (gs1/EPCIS, ``JSON-LD-Context/``).

Any other remote context is refused: :func:`check_context` raises
``traceability.epcis.EpcisError`` (HTTP 400) naming the URL before anything is expanded,
and :func:`document_loader` (installed as PyLD's default loader on import, replacing the
network loader ``epcis_event_hash_generator`` installs) raises PyLD's ``JsonLdError`` for
it, so even a context missed by the check never reaches the network. Inline context
objects (``{"ex": "https://example.org/"}``, term definitions that are objects) need no
loader and are kept.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import epcis_event_hash_generator  # noqa: F401  (it installs a network loader on import)
from pyld import jsonld
from pyld.jsonld import JsonLdError

STANDARDS = Path(__file__).resolve().parent / "standards" / "epcis"
INLINE_CONTEXT_FILE = "epcis-context-inline.jsonld"
_EPCIS_CONTEXT_PATHS = (
    "ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    "ref.gs1.org/standards/epcis/epcis-context.jsonld",
    "gs1.github.io/EPCIS/epcis-context.jsonld",
)
_SUB_CONTEXTS = (
    "cbv-context-bizstep",
    "cbv-context-biztransaction-type",
    "cbv-context-component",
    "cbv-context-disposition",
    "cbv-context-error-reason",
    "cbv-context-sourcedest-type",
    "gs1-context-measurement-type",
    "gs1-context-sensor-alert-type",
)
# Every published spelling of the EPCIS 2.0 context (https and http).
EPCIS_CONTEXT_URLS = frozenset(
    f"{scheme}://{path}" for path in _EPCIS_CONTEXT_PATHS for scheme in ("https", "http")
)
# URL -> bundled file name.
KNOWN_CONTEXTS: dict[str, str] = {url: INLINE_CONTEXT_FILE for url in EPCIS_CONTEXT_URLS} | {
    f"{scheme}://gs1.github.io/EPCIS/{name}.jsonld": f"{name}.jsonld"
    for name in _SUB_CONTEXTS
    for scheme in ("https", "http")
}


class UnknownContext(ValueError):
    """A remote ``@context`` this server does not hold; ``url`` names it, ``path`` says where."""

    def __init__(self, url: str, path: str):
        super().__init__(f"{path}: unknown @context {url!r}")
        self.url = url
        self.path = path


@functools.cache
def _load(name: str) -> str:
    return (STANDARDS / name).read_text(encoding="utf-8")


def document_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """PyLD's document loader, offline: a known context URL gives its bundled document
    (a fresh copy: PyLD may change what it is given); any other URL raises
    ``JsonLdError`` (``loading remote context failed``) without a connection."""
    name = KNOWN_CONTEXTS.get(url)
    if name is None:
        raise JsonLdError(
            f"this server does not load remote JSON-LD documents: {url}",
            "jsonld.LoadDocumentError",
            {"url": url},
            code="loading remote context failed",
        )
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": json.loads(_load(name)),
    }


def install() -> None:
    """Make :func:`document_loader` PyLD's default (idempotent; done on import)."""
    jsonld.set_document_loader(document_loader)


def is_epcis_context(item: Any) -> bool:
    """True for any published URL of the EPCIS 2.0 context."""
    return isinstance(item, str) and item in EPCIS_CONTEXT_URLS


def _remote_urls(context: Any, path: str) -> Iterator[tuple[str, str]]:
    """(url, path) of every remote context named in ``context``, scoped contexts included."""
    if isinstance(context, str):
        yield context, path
    elif isinstance(context, list):
        for index, item in enumerate(context):
            yield from _remote_urls(item, f"{path}/{index}")
    elif isinstance(context, dict):
        for key, value in context.items():
            if key == "@import" and isinstance(value, str):
                yield value, f"{path}/@import"
            elif isinstance(value, dict) and "@context" in value:
                yield from _remote_urls(value["@context"], f"{path}/{key}/@context")


def check_context(context: Any, path: str = "/@context") -> None:
    """Raise :class:`UnknownContext` for the first remote context not bundled here."""
    for url, where in _remote_urls(context, path):
        if url not in KNOWN_CONTEXTS:
            raise UnknownContext(url, where)


def check_document(node: Any, path: str = "") -> None:
    """:func:`check_context` on every ``@context`` anywhere in a JSON document (an event
    may carry its own)."""
    stack = [(node, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if key == "@context":
                    check_context(child, f"{where}/@context")
                elif isinstance(child, dict | list):
                    stack.append((child, f"{where}/{key}"))
        elif isinstance(value, list):
            stack.extend(
                (child, f"{where}/{i}")
                for i, child in enumerate(value)
                if isinstance(child, dict | list)
            )


install()
