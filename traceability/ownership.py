"""Who may write what: the one rule for every event an organisation records.

The rule (DESIGN.md, "Who may write what"; issue 14, "Ownership of writes"): an
organisation records or captures events only about what it owns, or what a recorded
transfer brought to it. Officers and administrators are not limited. It is checked
before an event is stored (:func:`check_events`, called by ``epcis.store_events``, so the
EPCIS capture, single events, guided events, their forms and every import go through it)
and again when a record is shown in public (:func:`refusals`, used by
``services.batch_events``), so events stored before the rule existed, or that no longer
pass it, leave the consumer page, the passport, the batch history and the portal record.

What an organisation owns (``owner`` below):

- **Lots and serials of its products**: an EPC class or instance of a GTIN, in every
  spelling (a GS1 Digital Link on any host, ``urn:epc:class:lgtin:…``,
  ``urn:epc:id:sgtin:…``, ``urn:epc:idpat:sgtin:<prefix>.<item>.*``). The owner is the
  producer of the registered batch (``/10/`` lot), of the batch an issued label belongs to
  (``/21/`` serial without a lot), else the producer of the registered product.
- **Places it registered**: a ``Location`` of it (by GLN, SGLN or
  ``urn:nguon:location:<id>``), its organisation GLN (as ``/414/``, ``/417/``, SGLN or
  PGLN), its production areas (``urn:nguon:area:<code>``).
- **Containers, returnable assets and other things it used first** (SSCC, GRAI, GIAI,
  GSRN, any other URI): nothing here registers them, so the organisation whose stored
  event names one first (its commissioning, packing or first observation) holds it from
  then on. Places that are not registered here (a GLN no organisation or location
  carries, any other URI) follow the same first-use rule.

What a transfer brings: a stored event with bizStep ``shipping`` or ``receiving`` that
was recorded by the object's owner, by an organisation that already holds it, or by an
officer, makes every organisation named in its ``sourceList`` or ``destinationList`` (by
organisation GLN, location or production area) a holder of each object it names (a lot
class hands over the lot and its items; one serial hands over that item). Holders may
record further events about it (and transfer it on). A receiving event a stranger records
about someone else's lot brings it nothing.

Unknown identifiers: a GTIN that no product here carries is nobody's here: any
organisation may name it (its owner is not a user of this service; should the product be
registered later, the registration wins and earlier strangers' events leave its public
record). Our own namespaces are closed: a ``urn:nguon:area:`` or ``urn:nguon:location:``
that does not exist, an identifier that looks like a GTIN but does not parse, and a
pattern over a whole company prefix (``…idpat:sgtin:<prefix>.*.*``) are refused to a
cooperative.

Parties: ``sourceList``/``destinationList`` name the sender and the receiver, so another
organisation may be named, but only as the counterpart: a list may name another
organisation only when the other list names none (A ships to B: source A, destination B;
B receives from A: source A, destination B). Naming other organisations on both sides
(claiming a transfer between strangers) is refused.

Where the event names anything else, the whole request is refused with 403 naming the
offending identifier and its place in the event; nothing is stored (also under
``GS1-Capture-Error-Behaviour: proceed``: it is not a schema error of one event).

Event IDs must not reveal a stranger's event: a cooperative may leave ``eventID`` out (it
is then computed) or send the event's reference hash (``ni:///sha-256;…?ver=CBV2.0``,
exactly as ``epcis_event_hash_generator`` computes it); any other eventID (another
hash, a ``urn:uuid:``…) is refused with 400, whatever is stored. A cooperative therefore
can only name an existing event by re-sending its exact content, and the content is
checked by the rule above first: a stranger's event names the stranger's lots or places
and is refused with the same 403 whether it exists or not. (One corner remains: an
event whose every object and place the sender may name, with the same time and fields as
one a holder already recorded, is answered as a duplicate; the sender then learns only
what it already wrote.)
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from biip import ParseError
from biip.checksums import gs1_standard_check_digit
from biip.gs1_digital_link_uris import GS1DigitalLinkURI
from flask import current_app
from sqlalchemy import func, select, tuple_

from nguon.db import chunks, db
from nguon.errors import DomainValidationError
from nguon.i18n import _
from nguon.inputs import is_digits
from registry.models import Organisation, ProductionArea
from traceability.gs1 import product_key
from traceability.models import Batch, EpcisEvent, EventEpc, Label, Location, Product

TRANSFER_STEPS = frozenset({"shipping", "receiving"})
HASH_PREFIX = "ni:///sha-256;"
CHUNK = 500  # values per IN list (PostgreSQL plans longer lists more slowly)
# (list field, role) of every object an event names; classes sit under "epcClass".
OBJECT_LISTS = (
    ("epcList", False),
    ("childEPCs", False),
    ("inputEPCList", False),
    ("outputEPCList", False),
    ("quantityList", True),
    ("childQuantityList", True),
    ("inputQuantityList", True),
    ("outputQuantityList", True),
)
# Objects a transfer hands over (inputs and outputs belong to transformations).
TRANSFERRED_LISTS = frozenset(
    {"parentID", "epcList", "childEPCs", "quantityList", "childQuantityList"}
)
GS1_HOST = "https://id.gs1.org"

Key = tuple[str, ...]


class OwnershipError(DomainValidationError):
    """An event names something the recording organisation neither owns nor holds."""

    status = 403


# --- identifiers ------------------------------------------------------------------------------


@dataclass
class Subject:
    """One identifier as the rule sees it."""

    identifier: str
    owner: int | None = None  # None: nobody here owns it
    # What a transfer of it hands over, most specific first (an item, then its lot).
    keys: tuple[Key, ...] = ()
    closed: bool = False  # names a record of ours that does not exist: staff only
    # Spellings to look for its first use, and where ("epc" or "location").
    first_use: tuple[str, ...] = ()
    first_use_in: str = ""
    # Lookups still to make: ("batch", gtin, lot) | ("label", gtin, serial) | ("product", gtin)
    # | ("gln", gln) | ("area", code) | ("location", id)
    lookups: list[tuple[Any, ...]] = field(default_factory=list)


_URN_KEY = re.compile(r"^urn:epc:id:(sscc|sgln|pgln|grai|giai|gsrn):([0-9]+)\.([^.]*)(?:\.(.*))?$")
_IDPAT = re.compile(r"^urn:epc:idpat:(?:sgtin|lgtin):([0-9]+)\.([0-9*]+)\.\*$")
_NGUON = re.compile(r"^urn:nguon:(area|location):(.+)$")


def _check(body: str) -> str:
    return body + str(gs1_standard_check_digit(body))


@functools.lru_cache(maxsize=4096)
def gs1_key(identifier: str) -> tuple[str, str, str | None] | None:
    """(AI, value, extension) of a GS1 key other than a GTIN, from a Digital Link on any
    host or an EPC URN: SSCC (00), GLN with extension (414, 254), party GLN (417), GRAI
    (8003), GIAI (8004), GSRN (8018), any other key a Digital Link carries."""
    if identifier.startswith("urn:epc:id:"):
        match = _URN_KEY.match(identifier)
        if not match:
            return None
        scheme, cp, ref, rest = match[1], match[2], match[3], match[4]
        if not (is_digits(ref) or ref == "" or scheme == "giai"):
            return None  # a 12-digit company prefix leaves an empty reference
        try:
            if scheme == "sscc" and len(cp) + len(ref) == 17 and ref:
                return "00", _check(ref[0] + cp + ref[1:]), None
            if scheme == "sgln" and len(cp) + len(ref) == 12:
                return "414", _check(cp + ref), (unquote(rest) if rest not in (None, "0") else None)
            if scheme == "pgln" and len(cp) + len(ref) == 12:
                return "417", _check(cp + ref), None
            if scheme == "grai" and len(cp) + len(ref) == 12 and rest:
                return "8003", "0" + _check(cp + ref) + unquote(rest), None
            if scheme == "giai":
                return "8004", cp + unquote(ref), None
            if scheme == "gsrn" and len(cp) + len(ref) == 17:
                return "8018", _check(cp + ref), None
        except ValueError:
            return None
        return None
    if urlsplit(identifier).scheme not in ("http", "https"):
        return None
    try:
        parsed = GS1DigitalLinkURI.parse(identifier)
    except (ParseError, ValueError):
        return None
    strings = parsed.element_strings
    if not strings or strings[0].ai.ai == "01":
        return None
    primary = strings[0]
    ext = next((e.value for e in strings[1:] if e.ai.ai == "254"), None)
    return primary.ai.ai, primary.value, (ext if ext not in (None, "0") else None)


def spellings(ai: str, value: str, ext: str | None) -> tuple[str, ...]:
    """The usual spellings of one GS1 key: Digital Links on GS1's host and ours, EPC URNs
    for every company prefix length (6–12 digits)."""
    bases = {GS1_HOST, current_app.config["PUBLIC_URL"].rstrip("/")}
    found = set()
    for base in bases:
        link = f"{base}/{ai}/{quote(value, safe='')}"
        found.add(link + (f"/254/{quote(ext, safe='')}" if ext else ""))
        if ai == "414" and not ext:
            found.add(link + "/254/0")
    for size in range(6, 13):
        if ai == "00" and len(value) == 18:
            found.add(f"urn:epc:id:sscc:{value[1 : 1 + size]}.{value[0]}{value[1 + size : 17]}")
        elif ai in ("414", "417") and len(value) == 13:
            cp, ref = value[:size], value[size:12]
            if ai == "414":
                found.add(f"urn:epc:id:sgln:{cp}.{ref}.{quote(ext, safe='') if ext else '0'}")
            else:
                found.add(f"urn:epc:id:pgln:{cp}.{ref}")
        elif ai == "8003" and len(value) > 14:
            found.add(
                f"urn:epc:id:grai:{value[1 : 1 + size]}.{value[1 + size : 13]}."
                f"{quote(value[14:], safe='')}"
            )
        elif ai == "8004" and len(value) > size and is_digits(value[:size]):
            found.add(f"urn:epc:id:giai:{value[:size]}.{quote(value[size:], safe='')}")
        elif ai == "8018" and len(value) == 18:
            found.add(f"urn:epc:id:gsrn:{value[:size]}.{value[size:17]}")
    return tuple(sorted(found))


def _looks_like_gtin(identifier: str) -> bool:
    return identifier.startswith(
        ("urn:epc:id:sgtin:", "urn:epc:class:lgtin:", "urn:epc:idpat:")
    ) or (urlsplit(identifier).scheme in ("http", "https") and "/01/" in identifier)


_PLAIN_LINK = re.compile(
    r"^https?://[^/?#]+/01/(\d{14})(?:/10/([A-Za-z0-9_.~-]{1,20}))?(?:/21/([A-Za-z0-9_.~-]{1,20}))?$"
)


def trade_item(identifier: str) -> tuple[str, str | None, str | None] | None:
    """``gs1.product_key``, with the common spelling (a Digital Link with a GTIN-14 and
    plain lot and serial) read by one regular expression: a capture names thousands of
    serials, each parsed once here instead of by biip (about 0.2 ms each)."""
    plain = _PLAIN_LINK.match(identifier)
    if plain and _check(plain[1][:13]) == plain[1]:
        return plain[1], plain[2], plain[3]
    return product_key(identifier)


def describe(kind: str, identifier: str) -> Subject:
    """What has to be looked up to know who owns ``identifier`` named as ``kind``
    ("object", "location" or "party")."""
    subject = Subject(identifier)
    if kind == "object":
        key = trade_item(identifier)
        if key is None:
            pattern = _IDPAT.match(identifier)
            if pattern and "*" not in pattern[2] and len(pattern[1]) + len(pattern[2]) == 13:
                gtin = _check(pattern[2][0] + pattern[1] + pattern[2][1:])
                subject.lookups.append(("product", gtin))
                return subject
        if key is not None:
            gtin, lot, serial = key
            if serial is not None:
                subject.keys += (("item", gtin, serial),)
            if lot is not None:
                subject.keys += (("lot", gtin, lot),)
                subject.lookups.append(("batch", gtin, lot))
            elif serial is not None:
                subject.lookups.append(("label", gtin, serial))
            subject.lookups.append(("product", gtin))
            return subject
        if _looks_like_gtin(identifier):
            subject.closed = True
            return subject
        gs1 = gs1_key(identifier)
        names = spellings(*gs1) if gs1 else ()
        subject.keys = (("epc", *(gs1 or ("uri", identifier, ""))),)
        subject.first_use = tuple(sorted({identifier, *names}))
        subject.first_use_in = "epc"
        return subject
    nguon = _NGUON.match(identifier)
    if nguon:
        subject.lookups.append((nguon[1], nguon[2]))
        subject.closed = kind == "location"  # opened by the lookup when the record exists
        return subject
    gs1 = gs1_key(identifier)
    if gs1 and gs1[0] in ("414", "417"):
        subject.lookups.append(("gln", gs1[1]))
    if kind == "location":
        names = spellings(*gs1) if gs1 else ()
        subject.first_use = tuple(sorted({identifier, *names}))
        subject.first_use_in = "location"
    return subject


# --- what an event names ----------------------------------------------------------------------


def named(event: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(JSON pointer, identifier, kind) for every object, place and party ``event`` names."""
    parent = event.get("parentID")
    if isinstance(parent, str):
        yield "/parentID", parent, "object"
    for key, quantities in OBJECT_LISTS:
        for i, item in enumerate(event.get(key) or []):
            value = item.get("epcClass") if quantities and isinstance(item, dict) else item
            if isinstance(value, str):
                yield (f"/{key}/{i}/epcClass" if quantities else f"/{key}/{i}"), value, "object"
    for key in ("readPoint", "bizLocation"):
        value = (event.get(key) or {}).get("id") if isinstance(event.get(key), dict) else None
        if isinstance(value, str):
            yield f"/{key}/id", value, "location"
    for key, member in (("sourceList", "source"), ("destinationList", "destination")):
        for i, item in enumerate(event.get(key) or []):
            value = item.get(member) if isinstance(item, dict) else None
            if isinstance(value, str):
                yield f"/{key}/{i}/{member}", value, "party"


def _owner_queries(kind: str, chunk: Sequence[Any]) -> list[Any]:
    """Queries giving (key..., owner) rows for one kind of lookup (see ``Subject``)."""
    if kind == "batch":
        return [
            select(Product.gtin, Batch.lot, Batch.producer_id)
            .join(Batch, Batch.product_id == Product.id)
            .where(tuple_(Product.gtin, Batch.lot).in_(chunk))
        ]
    if kind == "label":
        return [
            select(Label.gtin, Label.serial, Batch.lot, Batch.producer_id)
            .join(Batch, Batch.id == Label.batch_id)
            .where(tuple_(Label.gtin, Label.serial).in_(chunk))
        ]
    if kind == "product":
        return [select(Product.gtin, Product.producer_id).where(Product.gtin.in_(chunk))]
    if kind == "gln":  # an organisation's GLN, or one of its registered locations
        return [
            select(Organisation.gln, Organisation.id).where(Organisation.gln.in_(chunk)),
            select(Location.gln, Location.organisation_id).where(Location.gln.in_(chunk)),
        ]
    if kind == "area":
        return [
            select(ProductionArea.code, ProductionArea.owner_id).where(
                ProductionArea.code.in_(chunk)
            )
        ]
    if kind == "location":
        return [select(Location.id, Location.organisation_id).where(Location.id.in_(chunk))]
    raise ValueError(kind)


# --- the ledger: owners and holders of a set of identifiers -----------------------------------


class Ledger:
    """Who owns and who holds every identifier a set of events names, read in bulk (a few
    queries whatever the number of events)."""

    def __init__(self) -> None:
        self.subjects: dict[tuple[str, str], Subject] = {}
        self.holders: dict[Key, set[int]] = defaultdict(set)
        self._holders_known: set[Key] = set()
        # What each event names, read once: {id(event): (event, [(pointer, id, kind)])}.
        self._names: dict[int, tuple[dict[str, Any], list[tuple[str, str, str]]]] = {}

    def named(self, event: dict[str, Any]) -> list[tuple[str, str, str]]:
        known = self._names.get(id(event))
        if known is None or known[0] is not event:
            known = self._names[id(event)] = (event, list(named(event)))
        return known[1]

    # reading owners

    def subject(self, kind: str, identifier: str) -> Subject:
        return self.subjects[(kind, identifier)]

    def learn(self, events: Iterable[dict[str, Any]]) -> None:
        fresh = []
        for event in events:
            for _pointer, identifier, kind in self.named(event):
                if (kind, identifier) not in self.subjects:
                    subject = describe(kind, identifier)
                    self.subjects[(kind, identifier)] = subject
                    fresh.append(subject)
        if fresh:
            self._resolve(fresh)

    def _resolve(self, subjects: list[Subject]) -> None:
        wanted: dict[str, set[Any]] = defaultdict(set)
        for subject in subjects:
            for kind, *value in subject.lookups:
                wanted[kind].add(tuple(value) if len(value) > 1 else value[0])
        found: dict[tuple[Any, ...], Any] = {}
        for kind, values in wanted.items():
            if kind == "location":  # urn:nguon:location:<id>, ids within the column's range
                values = {int(v) for v in values if is_digits(v, 9)}
            for chunk in chunks(sorted(values), CHUNK):
                for query in _owner_queries(kind, chunk):
                    for *key, owner in db.session.execute(query):
                        if kind == "label":  # (gtin, serial, lot): the item's lot too
                            *key, lot = key
                            owner = (owner, lot)
                        found[(kind, *map(str, key))] = owner
        unresolved = []
        for subject in subjects:
            for lookup in subject.lookups:
                if lookup not in found:
                    continue
                owner = found[lookup]
                if lookup[0] == "label":  # (producer, lot): the item belongs to a lot
                    owner, lot = owner
                    subject.keys += (("lot", lookup[1], lot),)
                subject.owner = owner
                subject.closed = False
                break
            else:
                if subject.first_use:
                    unresolved.append(subject)
        first = self._first_users(unresolved)
        for subject in unresolved:
            subject.owner = first.get(subject.identifier)

    def _first_users(self, subjects: list[Subject]) -> dict[str, int]:
        """The organisation whose stored event named each subject first (by any spelling);
        staff's events register nothing."""
        owners: dict[str, int] = {}
        for where in ("epc", "location"):
            pending = [s for s in subjects if s.first_use_in == where]
            names = sorted({n for s in pending for n in s.first_use})
            if not names:
                continue
            earliest: dict[str, int] = {}
            columns = (
                [EventEpc.epc]
                if where == "epc"
                else [EpcisEvent.read_point, EpcisEvent.biz_location]
            )
            for column in columns:
                for chunk in chunks(names, CHUNK):
                    query = select(column, func.min(EpcisEvent.id)).where(
                        column.in_(chunk), EpcisEvent.organisation_id.isnot(None)
                    )
                    if where == "epc":
                        query = query.join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
                    for name, pk in db.session.execute(query.group_by(column)):
                        earliest[name] = min(pk, earliest.get(name, pk))
            pks = sorted(set(earliest.values()))
            org_of: dict[int, int] = {}
            for chunk in chunks(pks, CHUNK):
                org_of.update(
                    db.session.execute(
                        select(EpcisEvent.id, EpcisEvent.organisation_id).where(
                            EpcisEvent.id.in_(chunk)
                        )
                    ).all()
                )
            for subject in pending:
                hits = [earliest[n] for n in subject.first_use if n in earliest]
                if hits:
                    owners[subject.identifier] = org_of[min(hits)]
        return owners

    # reading holders

    def need_holders(self, subjects: Iterable[Subject]) -> None:
        """Read the transfers of every object in ``subjects`` (once)."""
        subjects = list(subjects)
        keys = {k for s in subjects for k in s.keys if k not in self._holders_known}
        if not keys:
            return
        self._holders_known |= keys
        pairs = {(k[1], k[2]) for k in keys if k[0] == "lot"}
        epcs = {
            n
            for s in subjects
            if any(k in keys and k[0] == "epc" for k in s.keys)
            for n in s.first_use
        }
        item_gtins = {k[1] for k in keys if k[0] == "item"}
        found: dict[int, tuple[int | None, dict[str, Any]]] = {}
        for values, condition in (
            (pairs, lambda chunk: tuple_(EventEpc.gtin, EventEpc.lot).in_(chunk)),
            (epcs, lambda chunk: EventEpc.epc.in_(chunk)),
            (item_gtins, lambda chunk: EventEpc.gtin.in_(chunk) & EventEpc.lot.is_(None)),
        ):
            for chunk in chunks(sorted(values), CHUNK):
                rows = db.session.execute(
                    select(EpcisEvent.id, EpcisEvent.organisation_id, EpcisEvent.document)
                    .join(EventEpc, EventEpc.event_pk == EpcisEvent.id)
                    .where(condition(chunk), EpcisEvent.biz_step.in_(TRANSFER_STEPS))
                )
                found.update({pk: (org, document) for pk, org, document in rows})
        transfers = [found[pk] for pk in sorted(found)]
        if not transfers:
            return
        self.learn(document for _org, document in transfers)
        moves = []
        for org, document in transfers:
            parties = {
                self.subject(kind, identifier).owner
                for _pointer, identifier, kind in self.named(document)
                if kind == "party"
            } - {None}
            objects = [
                self.subject("object", identifier)
                for pointer, identifier, kind in self.named(document)
                if kind == "object" and pointer.split("/")[1] in TRANSFERRED_LISTS
            ]
            if parties and objects:
                moves.append((org, parties, objects))
        changed = True
        while changed:  # holders of holders: until nothing new is learnt
            changed = False
            for org, parties, objects in moves:
                for subject in objects:
                    if not subject.keys or not (org is None or self.holds(org, subject)):
                        continue
                    have = self.holders[subject.keys[0]]
                    if not parties <= have:
                        have |= parties
                        changed = True

    def holds(self, org: int, subject: Subject) -> bool:
        return org == subject.owner or any(org in self.holders.get(k, ()) for k in subject.keys)

    # the rule

    def may_name(self, org: int, subject: Subject) -> bool:
        if subject.closed:
            return False
        if subject.owner is None or subject.owner == org:
            return True
        return any(org in self.holders.get(k, ()) for k in subject.keys)

    def foreign(self, event: dict[str, Any], org: int) -> list[Subject]:
        return [
            s
            for _pointer, identifier, kind in self.named(event)
            if kind == "object"
            for s in [self.subject(kind, identifier)]
            if s.owner not in (None, org)
        ]

    def refusal(self, event: dict[str, Any], org: int) -> tuple[str, str] | None:
        """(JSON pointer, identifier) of the first thing ``event`` names that ``org`` may
        not name; None when the event passes the rule. ``learn`` and ``need_holders`` first."""
        counterparts: dict[str, list[tuple[str, str]]] = {"sourceList": [], "destinationList": []}
        for pointer, identifier, kind in self.named(event):
            subject = self.subject(kind, identifier)
            if kind == "party":
                if subject.owner not in (None, org):
                    counterparts[pointer.split("/")[1]].append((pointer, identifier))
            elif not self.may_name(org, subject):
                return pointer, identifier
        if counterparts["sourceList"] and counterparts["destinationList"]:
            return counterparts["sourceList"][0]
        return None


# --- at capture ---------------------------------------------------------------------------------


def check_events(
    events: Sequence[dict[str, Any]], context: list[Any], *, organisation_id: int | None
) -> None:
    """Refuse the whole capture unless ``organisation_id`` may record every event.

    Raises :class:`OwnershipError` (403) naming the first identifier it may not name, or
    ``EpcisError`` (400) for an eventID that is not the event's reference hash. Staff
    (``organisation_id`` None) are not limited. Reads only; changes nothing.
    """
    if organisation_id is None or not events:
        return
    _check_event_ids(events, context)
    ledger = Ledger()
    ledger.learn(events)
    ledger.need_holders(s for e in events for s in ledger.foreign(e, organisation_id))
    for index, event in enumerate(events):
        refused = ledger.refusal(event, organisation_id)
        if refused is not None:
            pointer, identifier = refused
            message = _(
                "%(identifier)s is not yours: an organisation records events only about its "
                "own lots, items, containers and places, or what a recorded shipment brought "
                "to it",
                identifier=identifier,
            )
            raise OwnershipError(
                {f"/{index}{pointer}": message},
                detail=_(
                    "event %(number)d, %(place)s: %(message)s",
                    number=index,
                    place=pointer,
                    message=message,
                ),
            )


def _check_event_ids(events: Sequence[dict[str, Any]], context: list[Any]) -> None:
    from traceability import epcis

    given = [(i, e) for i, e in enumerate(events) if e.get("eventID")]
    if not given:
        return
    hashes = epcis.event_hashes([e for _i, e in given], context)
    for (index, event), expected in zip(given, hashes, strict=True):
        if event["eventID"] != expected:
            raise epcis.EpcisError(
                _(
                    "an eventID must be the event's reference hash (%(expected)s) or left "
                    "out, to be computed",
                    expected=expected,
                ),
                f"/{index}/eventID",
            )


# --- what a transfer brought ---------------------------------------------------------------------


def received_batch_ids(organisation_id: int, among: Iterable[int] | None = None) -> set[int]:
    """Ids of other producers' batches (lots) that a recorded transfer brought to
    ``organisation_id`` (or to an organisation that then passed them on to it), so it may
    record further steps about them (the rule above). ``among`` limits the answer to those
    batch ids. Reads only: one query for the candidate lots (named by a shipping or
    receiving event), then the ledger's bulk reads."""
    query = (
        select(Batch.id, Product.gtin, Batch.lot)
        .join(Product, Product.id == Batch.product_id)
        .join(EventEpc, (EventEpc.gtin == Product.gtin) & (EventEpc.lot == Batch.lot))
        .join(EpcisEvent, EpcisEvent.id == EventEpc.event_pk)
        .where(
            EpcisEvent.biz_step.in_(TRANSFER_STEPS),
            Batch.producer_id != organisation_id,
        )
        .distinct()
    )
    if among is not None:
        wanted = sorted({int(i) for i in among})
        if not wanted:
            return set()
        query = query.where(Batch.id.in_(wanted))
    candidates = {
        batch_id: f"{GS1_HOST}/01/{gtin}/10/{quote(lot, safe='')}"
        for batch_id, gtin, lot in db.session.execute(query)
    }
    if not candidates:
        return set()
    ledger = Ledger()
    ledger.learn([{"quantityList": [{"epcClass": uri} for uri in candidates.values()]}])
    subjects = {batch_id: ledger.subject("object", uri) for batch_id, uri in candidates.items()}
    ledger.need_holders(subjects.values())
    return {
        batch_id
        for batch_id, subject in subjects.items()
        if subject.owner != organisation_id and ledger.holds(organisation_id, subject)
    }


# --- in public ----------------------------------------------------------------------------------


def refusals(events: Sequence[EpcisEvent]) -> dict[int, str]:
    """For each stored event that fails the rule today, why (by its primary key). Events
    recorded by staff pass."""
    judged = [e for e in events if e.organisation_id is not None]
    if not judged:
        return {}
    ledger = Ledger()
    ledger.learn(e.document for e in judged)
    ledger.need_holders(s for e in judged for s in ledger.foreign(e.document, e.organisation_id))
    found = {}
    for event in judged:
        refused = ledger.refusal(event.document, event.organisation_id)
        if refused is not None:
            found[event.id] = refused[1]
    return found
