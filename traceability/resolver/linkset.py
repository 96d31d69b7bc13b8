"""Represent, for a GS1 client: the linkset (RFC 9264, GS1's linkset schema) and linkType.

One context object, anchored at the code's canonical (uncompressed) URI, with its item
description and links that each carry a target, a title, a media type and languages:
the page itself (the default link and gs1:pip), the lot's EPCIS 2.0 events
(gs1:traceability) and the registry's record of each mark (gs1:certificationInfo).
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _

from traceability.gs1 import DigitalLink
from traceability.resolver.passport import canonical

LINKSET = "application/linkset+json"
VOC = "https://gs1.org/voc/"
# The namespaces a client may write a GS1 link type in (and the CURIE).
VOC_ALIASES = (
    "gs1:",
    VOC,
    "http://gs1.org/voc/",
    "https://ref.gs1.org/voc/",
    "https://www.gs1.org/voc/",
)
CONTEXT_PATH = "/contexts/linkset.jsonld"
JSON_LD_CONTEXT = "http://www.w3.org/ns/json-ld#context"


def anchor(link: DigitalLink, base: str) -> str:
    return canonical(link).uri(base)


def linkset_body(
    link: DigitalLink, card: dict[str, Any], base: str, languages: list[str]
) -> dict[str, Any]:
    """The linkset of the code ``link`` names (its batch's ``card``)."""
    uri = anchor(link, base)
    name = card["product"]["name"]
    description = _("%(product)s, lot %(lot)s", product=name, lot=card["lot"])
    if link.serial is not None:
        description = _("%(item)s, serial %(serial)s", item=description, serial=link.serial)
    links: dict[str, Any] = {
        "anchor": uri,
        "itemDescription": description,
        f"{VOC}defaultLink": [{"href": uri, "title": name}],
        f"{VOC}pip": [{"href": uri, "title": name, "type": "text/html", "hreflang": languages}],
        f"{VOC}traceability": [
            {
                "href": card["events_url"],
                "title": _("Journey of this lot (EPCIS 2.0 events)"),
                "type": "application/ld+json",
            }
        ],
    }
    certificates = [
        {
            "href": base + c["url"],
            "title": f"{c['name']} {c['number'] or ''}".strip(),
            "type": "text/html",
            "hreflang": ["vi"],
        }
        for c in card["certifications"]
        if c.get("url")
    ]
    if certificates:
        links[f"{VOC}certificationInfo"] = certificates
    return {"linkset": [links]}


def link_type_name(value: str) -> str | None:
    """A requested linkType as GS1's term ("pip" for gs1:pip or its URI), or None when it
    is not in GS1's vocabulary (no link of it is ever kept here)."""
    for prefix in VOC_ALIASES:
        if value.startswith(prefix) and len(value) > len(prefix):
            return value[len(prefix) :]
    return None


def links_of_type(
    body: dict[str, Any], term: str, lang: str | None, media: str | None
) -> list[dict[str, Any]]:
    """The links of GS1 type ``term``; narrowed to a language or media type the client
    named when some link matches it."""
    found = list(body["linkset"][0].get(VOC + term, []))
    for key, wanted in (("hreflang", lang), ("type", media)):
        if wanted and len(found) > 1:
            matching = [
                item
                for item in found
                if (wanted in item.get(key, []) if key == "hreflang" else item.get(key) == wanted)
            ]
            found = matching or found
    return found


def context_link(base: str) -> str:
    return f'<{base}{CONTEXT_PATH}>; rel="{JSON_LD_CONTEXT}"; type="application/ld+json"'


def linkset_link(link: DigitalLink, base: str) -> str:
    """The Link header every answer about a code carries: where its linkset is."""
    return f'<{anchor(link, base)}?linkType=linkset>; rel="linkset"; type="{LINKSET}"'
