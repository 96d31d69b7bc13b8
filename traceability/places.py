"""Where an event happens and with whom, as a cooperative picks them: its own production
areas and registered locations (or a GLN, check digit verified, or a new named place
kept for next time), and a partner from the registry (or a name and tax code, kept).

Each becomes the URI an EPCIS event carries, and each URI is told back in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from nguon.db import db
from nguon.i18n import _
from nguon.inputs import is_digits
from nguon.text import nfc
from registry.models import Organisation, ProductionArea
from registry.services import TAX_CODE
from traceability.gs1 import IdentifierError, parse_gln
from traceability.models import Location, Partner
from traceability.services import Problems

AREA_URN = "urn:nguon:area:"
LOCATION_URN = "urn:nguon:location:"
PARTY_URN = "urn:nguon:party:"
ORGANISATION_URN = "urn:nguon:organisation:"
GLN_LOCATION = "https://id.gs1.org/414/"
GLN_PARTY = "https://id.gs1.org/417/"


def own_areas(organisation_id: int) -> list[ProductionArea]:
    return list(
        db.session.scalars(
            select(ProductionArea)
            .where(ProductionArea.owner_id == organisation_id)
            .order_by(ProductionArea.code)
        )
    )


def own_locations(organisation_id: int) -> list[Location]:
    return list(
        db.session.scalars(
            select(Location)
            .where(Location.organisation_id == organisation_id)
            .order_by(Location.name)
        )
    )


def place_choices(organisation_id: int) -> list[tuple[str, str]]:
    """The cooperative's areas, then its registered locations."""
    choices = [
        (f"area:{a.id}", f"{a.code} — {a.name or a.crop}") for a in own_areas(organisation_id)
    ]
    choices += [
        (f"location:{loc.id}", f"{loc.name}{' (GLN ' + loc.gln + ')' if loc.gln else ''}")
        for loc in own_locations(organisation_id)
    ]
    return choices


def partner_choices(organisation_id: int) -> list[tuple[str, str]]:
    """Registered organisations (other than the cooperative), then partners it entered."""
    rows = db.session.execute(
        select(Organisation.id, Organisation.name, Organisation.tax_code)
        .where(Organisation.id != organisation_id)
        .order_by(Organisation.name_key)
    ).all()
    choices = [
        (f"org:{r.id}", f"{r.name}{' — MST ' + r.tax_code if r.tax_code else ''}") for r in rows
    ]
    own = db.session.scalars(
        select(Partner).where(Partner.organisation_id == organisation_id).order_by(Partner.name)
    )
    choices += [(f"partner:{p.id}", f"{p.name} — MST {p.tax_code}") for p in own]
    return choices


def _printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


def _id_of(choice: str, prefix: str) -> int | None:
    rest = choice.removeprefix(prefix)
    return int(rest) if choice.startswith(prefix) and is_digits(rest, 9) else None


def organisation_uri(org: Organisation) -> str:
    if org.gln:
        return GLN_PARTY + org.gln
    if org.tax_code:
        return PARTY_URN + org.tax_code
    return f"{ORGANISATION_URN}{org.id}"


def resolve_place(
    organisation_id: int, choice: str, gln: str = "", new_name: str = "", field: str = "place"
) -> str | None:
    """The URI of the place chosen or entered; a GLN or a new name is registered as one
    of the cooperative's locations (once). None when nothing was given."""
    problems = Problems()
    gln, new_name = gln.strip(), nfc(new_name.strip())
    if gln:
        try:
            gln = parse_gln(gln)
        except IdentifierError as exc:
            problems.add(f"{field}_gln", exc.in_words())
            problems.raise_if_any()
        found = db.session.scalar(select(Location).where(Location.gln == gln))
        if found is None:
            found = Location(
                organisation_id=organisation_id, name=new_name or f"GLN {gln}", gln=gln
            )
            db.session.add(found)
            db.session.flush()
        return found.identifier
    if new_name:
        if len(new_name) > 300:
            problems.add(f"{field}_name", _("at most %(n)d characters", n=300))
        elif not _printable(new_name):
            problems.add(f"{field}_name", _("letters, digits and punctuation only"))
            problems.raise_if_any()
        found = db.session.scalar(
            select(Location).where(
                Location.organisation_id == organisation_id, Location.name == new_name
            )
        )
        if found is None:
            found = Location(organisation_id=organisation_id, name=new_name)
            db.session.add(found)
            db.session.flush()
        return found.identifier
    if not choice:
        return None
    area_id, location_id = _id_of(choice, "area:"), _id_of(choice, "location:")
    if area_id is not None:
        area = db.session.get(ProductionArea, area_id)
        if area is not None and area.owner_id == organisation_id:
            return AREA_URN + area.code
    if location_id is not None:
        location = db.session.get(Location, location_id)
        if location is not None and location.organisation_id == organisation_id:
            return location.identifier
    problems.add(field, _("choose one of your areas or locations"))
    problems.raise_if_any()
    return None


def resolve_partner(
    organisation_id: int, choice: str, name: str = "", tax_code: str = "", field: str = "partner"
) -> str | None:
    """The URI of the partner chosen, or entered by name and tax code (an organisation of
    the registry with that tax code is used as it is; otherwise the partner is kept)."""
    problems = Problems()
    name, tax_code = nfc(name.strip()), tax_code.strip()
    if name or tax_code:
        if not TAX_CODE.match(tax_code):
            problems.add(f"{field}_tax_code", _("must be 10 digits, or 10-3 digits for a branch"))
        if not name:
            problems.add(f"{field}_name", _("is required"))
        elif len(name) > 300:
            problems.add(f"{field}_name", _("at most %(n)d characters", n=300))
        elif not _printable(name):
            problems.add(f"{field}_name", _("letters, digits and punctuation only"))
        problems.raise_if_any()
        org = db.session.scalar(select(Organisation).where(Organisation.tax_code == tax_code))
        if org is not None:
            return organisation_uri(org)
        partner = db.session.scalar(
            select(Partner).where(
                Partner.organisation_id == organisation_id, Partner.tax_code == tax_code
            )
        )
        if partner is None:
            partner = Partner(organisation_id=organisation_id, name=name, tax_code=tax_code)
            db.session.add(partner)
            db.session.flush()
        return partner.identifier
    if not choice:
        return None
    org_id, partner_id = _id_of(choice, "org:"), _id_of(choice, "partner:")
    if org_id is not None:
        org = db.session.get(Organisation, org_id)
        if org is not None:
            return organisation_uri(org)
    if partner_id is not None:
        partner = db.session.get(Partner, partner_id)
        if partner is not None and partner.organisation_id == organisation_id:
            return partner.identifier
    problems.add(field, _("choose a partner from the list, or enter a name and tax code"))
    problems.raise_if_any()
    return None


def describe(uri: str | None) -> str:
    """A place or party URI in words (its name and code), or the URI itself."""
    if not uri:
        return ""
    if uri.startswith(AREA_URN):
        code = uri.removeprefix(AREA_URN)
        area = db.session.scalar(select(ProductionArea).where(ProductionArea.code == code))
        return f"{code} — {area.name or area.crop}" if area else code
    if uri.startswith(LOCATION_URN):
        rest = uri.removeprefix(LOCATION_URN)
        location = db.session.get(Location, int(rest)) if is_digits(rest, 9) else None
        return location.name if location else uri
    for prefix in (GLN_LOCATION, GLN_PARTY):
        if uri.startswith(prefix):
            gln = uri.removeprefix(prefix)[:13]
            location = db.session.scalar(select(Location).where(Location.gln == gln))
            org = db.session.scalar(select(Organisation).where(Organisation.gln == gln))
            named = (location.name if location and prefix == GLN_LOCATION else None) or (
                org.name if org else None
            )
            return f"{named} (GLN {gln})" if named else f"GLN {gln}"
    if uri.startswith(PARTY_URN):
        tax = uri.removeprefix(PARTY_URN)
        org = db.session.scalar(select(Organisation).where(Organisation.tax_code == tax))
        partner = db.session.scalar(select(Partner).where(Partner.tax_code == tax).limit(1))
        name = org.name if org else (partner.name if partner else None)
        return f"{name} (MST {tax})" if name else f"MST {tax}"
    if uri.startswith(ORGANISATION_URN):
        rest = uri.removeprefix(ORGANISATION_URN)
        org = db.session.get(Organisation, int(rest)) if is_digits(rest, 9) else None
        return org.name if org else uri
    return uri


def parties(event: dict[str, Any], name: Callable[[str | None], str] | None = None) -> list[str]:
    """The source and destination parties an event names, in words (by ``name``, a
    memoised :func:`describe`, when given)."""
    name = name or describe
    return [
        name(entry.get("source") or entry.get("destination"))
        for key in ("sourceList", "destinationList")
        for entry in event.get(key) or []
    ]
