"""EPCIS event hashes (``ni:///sha-256;…?ver=CBV2.0``), exactly as the reference library
``epcis_event_hash_generator`` computes them, at capture speed.

The reference (``hash_generator.epcis_hashes_from_events(json_to_py.
event_list_from_epcis_document_json(document))``) spends most of its time in three
places, none of which changes the result:

1. JSON-LD expansion of the whole document (PyLD), only to learn which CBV / GS1
   vocabulary IRIs (``https://ref.gs1.org/cbv/…``, ``https://gs1.org/voc/…``) the
   document's values expand to; a bare word (``shipping``) is then replaced by the one
   such IRI that ends in ``-shipping`` or ``/shipping``. Here only the *distinct* events
   are expanded, after every value that cannot expand to such an IRI (an absolute IRI or
   a literal whose prefix is no term of any context in play: EPCs, times, numbers…) is
   replaced by one placeholder: 10,000 events of one shape are one expansion. The set of
   IRIs found is the same (:func:`vocabulary_iris`).
2. ``json.dumps(…, indent=2)`` of the whole document for debug messages that are never
   shown, and a ``copy.deepcopy`` of every event: skipped.
3. The canonical form of each value (``_canonize_value``: CBV URNs, numbers, GS1 Digital
   Link URIs to EPC URNs; regular expressions): memoised per distinct value and field.

The library's own functions build the simple Python form (``_json_to_py``,
``deep_structure_correction``) and the pre-hash string (``_recurse_through_children_in_
order``, ``_gather_elements_not_in_order``), so the rules stay the library's. The tests
check the result against the unmodified library on GS1's example documents, on the
library's own test vectors and on hypothesis-generated events.

Two deliberate differences, where the library fails rather than hashes:

- an inline ``@context`` whose term definitions are objects (``{"ex": {"@id": …}}``,
  one of GS1's examples) makes the library raise ``TypeError``; here the term's
  ``@id`` is its namespace;
- an event the library cannot pre-hash is silently dropped by it (the list of hashes is
  then shorter than the list of events). The one case met in GS1's examples, a
  ``bizTransaction`` (or source, destination) without ``type``, is hashed as if its type
  were empty, which the algorithm leaves out of the pre-hash string (the hash the
  library gives the same event with ``"type": ""``); any other raises ``HashError``
  naming the event's index.

The library keeps the namespace prefixes it has seen in a module global that grows
from one document to the next; here each document starts from its own context only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any

from epcis_event_hash_generator import PROP_ORDER, dl_normaliser, hash_generator, json_to_py
from epcis_event_hash_generator.json_xml_model_mismatch_correction import (
    deep_structure_correction,
)
from pyld import jsonld as pyld

from traceability import jsonld

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
VOCABULARY_PREFIXES = ("https://ref.gs1.org/cbv", "https://gs1.org/voc")
_ABSOLUTE_IRI = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$")  # PyLD's test
_PLACEHOLDER_PREFIX = "nguoninert"
_PLACEHOLDER = _PLACEHOLDER_PREFIX + ":x"  # an absolute IRI: expands to itself anywhere
_LOCK = threading.Lock()  # the library's module globals are set per document
_DIGEST_VERSION = "epcis-event-hash-generator 1.9 / nguon 1"
# A Digital Link ending in a serial (AI 21) of letters and digits: its canonical form is
# the one of any other serial of the same letters-and-digits pattern, the serial put in.
_DL_SERIAL = re.compile(r"(https?://[^?#\s]*/21/)([A-Za-z0-9]{1,20})\Z")
_SERIAL_PATTERN = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "A" * 26 + "a" * 26 + "0" * 10
)
# ``json.dumps(value, sort_keys=True)`` without a new encoder made for every call.
canonical_json = json.JSONEncoder(sort_keys=True).encode
_PLAIN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")


class HashError(ValueError):
    """An event the reference algorithm cannot hash; ``index`` is its place in the list."""

    def __init__(self, index: int, message: str):
        super().__init__(f"event {index}: {message}")
        self.index = index
        self.message = message


def hash_document(events: Sequence[dict[str, Any]], context: list[Any]) -> dict[str, Any]:
    """The EPCISDocument the reference library is given for ``events`` (eventIDs left out:
    they do not enter the hash)."""
    return {
        "@context": [EPCIS_CONTEXT, *context],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2000-01-01T00:00:00Z",
        "epcisBody": {
            "eventList": [{k: v for k, v in e.items() if k != "eventID"} for e in events]
        },
    }


def reference_hashes(events: Sequence[dict[str, Any]], context: list[Any]) -> list[str]:
    """The unmodified reference library's hashes (slow; the oracle of the tests)."""
    document = json.loads(json.dumps(hash_document(events, context)))
    json_to_py._namespaces = {}
    return hash_generator.epcis_hashes_from_events(
        json_to_py.event_list_from_epcis_document_json(document)
    )


# --- 1. the vocabulary IRIs a document's values expand to ------------------------------------


def _context_objects(context: Any) -> list[dict[str, Any]]:
    """Every context object in play (remote ones through the offline loader), scoped ones
    included."""
    found: list[dict[str, Any]] = []
    stack = [context]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            stack.append(jsonld.document_loader(item)["document"].get("@context"))
        elif isinstance(item, dict):
            found.append(item)
            for value in item.values():
                if isinstance(value, dict) and "@context" in value:
                    stack.append(value["@context"])
    return found


class _Vocabulary:
    """What decides whether a value can expand to a vocabulary IRI, for one context."""

    def __init__(self, contexts: list[dict[str, Any]]):
        self.terms: set[str] = set()
        self.keyword_keys: set[str] = set()
        for item in contexts:
            for key, value in item.items():
                self.terms.add(key)
                # Keywords and their aliases keep their values, but @id: its value is an
                # IRI like any other.
                if (key.startswith("@") or (isinstance(value, str) and value.startswith("@"))) and (
                    key != "@id" and value != "@id"
                ):
                    self.keyword_keys.add(key)
        # With @vocab or @base anywhere, a relative value may expand to anything.
        self.relative_inert = not ({"@vocab", "@base"} & self.terms)
        self.usable = _PLACEHOLDER_PREFIX not in self.terms
        self.nested_context = False  # an @context inside an event: no reduction

    def inert(self, value: str) -> bool:
        """True when ``value`` expands to itself (or to a relative IRI) wherever it stands,
        so it cannot add a vocabulary IRI."""
        if value in self.terms or value.startswith(VOCABULARY_PREFIXES):
            return False
        prefix, colon, suffix = value.partition(":")
        if colon:
            if prefix in self.terms or prefix == "_":
                return False
            if suffix.startswith("//") or _ABSOLUTE_IRI.match(value):
                return True
        return self.relative_inert

    def skeleton(self, node: Any) -> Any:
        """``node`` with every inert string value replaced by the placeholder (values
        under keywords and their aliases kept whole)."""
        if isinstance(node, dict):
            shape = {}
            keyword_keys = self.keyword_keys
            for key, value in node.items():
                if key in keyword_keys or (key[:1] == "@" and key != "@id"):
                    if key == "@context":
                        self.nested_context = True
                    shape[key] = value
                elif isinstance(value, str):
                    shape[key] = _PLACEHOLDER if self.inert(value) else value
                elif isinstance(value, dict | list):
                    shape[key] = self.skeleton(value)
                else:
                    shape[key] = value
            return shape
        if isinstance(node, list):
            return [self.skeleton(item) for item in node]
        if isinstance(node, str) and self.inert(node):
            return _PLACEHOLDER
        return node


def _expanded_strings(expanded: Any, found: set[str]) -> None:
    stack = [expanded]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def vocabulary_iris(document: dict[str, Any]) -> set[str]:
    """The CBV / GS1 vocabulary IRIs among the string values of the JSON-LD expansion of
    ``document`` (an EPCISDocument with ``epcisBody.eventList``), as the reference library
    computes them, expanding each distinct event skeleton once."""
    vocabulary = _Vocabulary(_context_objects(document.get("@context")))
    events = document["epcisBody"]["eventList"]
    reduced = document
    if vocabulary.usable:
        distinct: dict[str, Any] = {}
        for event in events:
            skeleton = vocabulary.skeleton(event)
            distinct.setdefault(canonical_json(skeleton), skeleton)
        if not vocabulary.nested_context:
            reduced = {**document, "epcisBody": {"eventList": list(distinct.values())}}
    found: set[str] = set()
    options = {"documentLoader": jsonld.document_loader}
    _expanded_strings(pyld.expand(json.loads(json.dumps(reduced)), options), found)
    return {value for value in found if value.startswith(VOCABULARY_PREFIXES)}


class _BareWords:
    """The library's bare-word replacement (``_replace_bare_string_values``): a value
    becomes the one IRI that ends with ``-value`` or ``/value``, if exactly one does.

    Each IRI is filed under every tail that follows one of its ``-`` and ``/``: a
    value's matches are then one dictionary lookup."""

    def __init__(self, iris: set[str]):
        self.iris = iris
        tails: dict[str, set[str]] = {}
        for iri in iris:
            for place, char in enumerate(iri):
                if char in "-/":
                    tails.setdefault(iri[place + 1 :], set()).add(iri)
        self.unique = {tail: next(iter(found)) for tail, found in tails.items() if len(found) == 1}

    def word(self, value: str) -> str:
        return self.unique.get(value, value)

    def replace(self, node: Any) -> Any:
        if isinstance(node, str):
            return self.word(node) if self.iris else node
        if isinstance(node, list):
            return [self.replace(item) for item in node]
        if isinstance(node, dict):
            return {key: self.replace(value) for key, value in node.items()}
        return node


def _namespaces(context: Any) -> dict[str, str]:
    """The library's ``_collect_namespaces_from_jsonld_context``; a term defined by an
    object contributes its ``@id`` (the library raises TypeError there)."""
    found: dict[str, str] = {}
    if isinstance(context, list):
        for item in context:
            if isinstance(item, str):
                found[item] = "{" + item + "}"
            elif isinstance(item, dict):
                for key, value in item.items():
                    if isinstance(value, dict):
                        value = value.get("@id")
                    if isinstance(value, str):
                        found[key] = "{" + value + "}"
    return found


# --- 3. the pre-hash string ------------------------------------------------------------------


class _Canonical:
    """``hash_generator._canonize_value`` and ``_fix_time_stamp_format`` memoised per
    (field, value): both are pure functions of the text."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.times: dict[str, str] = {}
        self._canonize: Callable[[str], str] = hash_generator._canonize_value
        self._time: Callable[[str], str] = hash_generator._fix_time_stamp_format

        # While a template runs: token -> the canonical forms the library asked for.
        self.recording: dict[str, set[str]] | None = None
        # (link up to the serial, the serial's pattern) -> (a serial, its canonical form)
        self.serials: dict[tuple[str, str], tuple[str, str]] = {}

    def value(self, text: str) -> str:
        if self.recording is not None and text.startswith(_T0):
            self.recording.setdefault(text, set()).add("value")
            return text
        found = self.values.get(text)
        if found is None:
            found = self.values[text] = self._serial_value(text) or self._canonize(text)
        return found

    def _serial_value(self, text: str) -> str | None:
        """The library's canonical form of a Digital Link with a plain serial, from the
        one it gave for another serial of the same pattern (upper, lower, digit at each
        place) on the same link; None when there is none yet (the library decides)."""
        match = _DL_SERIAL.match(text)
        if match is None:
            return None
        head, serial = match.groups()
        pattern = serial.translate(_SERIAL_PATTERN)
        seen = self.serials.get((head, pattern))
        if seen is not None:
            model, form = seen
            return form[: -len(model)] + serial
        form = self._canonize(text)
        if form.endswith("/21/" + serial):  # the serial is kept as it stands: reusable
            self.serials[(head, pattern)] = (serial, form)
        return form

    def time(self, text: str) -> str:
        if self.recording is not None and text.startswith(_T0):
            self.recording.setdefault(text, set()).add("time")
            return text
        found = self.times.get(text)
        if found is None:
            found = self.times[text] = _fast_time(text) or self._time(text)
        return found


def _fast_time(text: str) -> str | None:
    """``_fix_time_stamp_format`` for a plain RFC 3339 time (the common case) without
    dateutil's parser: the same instant, rounded the same way (``round(µs, -3)``); None
    for anything else (the library's function then decides)."""
    if not _PLAIN_TIME.match(text):
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        utc = parsed.astimezone(dt.UTC)
        utc = utc.replace(microsecond=round(utc.microsecond, -3))
    except ValueError:
        return None
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


class _Quiet:
    """Stands in for the ``logging`` module inside the library during a pass: its
    per-value debug calls cost more than the hashing (messages it logs at debug and info
    level only)."""

    @staticmethod
    def debug(*args: Any, **kwargs: Any) -> None:
        return None

    info = debug

    def __getattr__(self, name: str) -> Any:
        return getattr(logging, name)


_QUIET = _Quiet()


def _prehash(event: tuple[Any, ...]) -> str:
    # The library's derive_prehashes_from_events for one event, without its deep copy
    # (``event`` is built for this call and may be consumed).
    return (
        "eventType="
        + event[0]
        + hash_generator._recurse_through_children_in_order(event[2], PROP_ORDER)
        + hash_generator._gather_elements_not_in_order(event[2], PROP_ORDER)
    )


def document_iris(events: Sequence[dict[str, Any]], context: list[Any]) -> frozenset[str]:
    """The vocabulary IRIs of the document the library hashes ``events`` in: with the
    events' JSON and the context, all an event's hash depends on."""
    return frozenset(vocabulary_iris(hash_document(events, context)))


def content_digests(
    events: Sequence[dict[str, Any]], context: list[Any], iris: frozenset[str]
) -> list[str]:
    """A SHA-256 per event of everything its reference hash is a function of (the
    event without eventID, the context, the document's vocabulary IRIs, this
    algorithm's version): equal digests, equal hashes."""
    common = json.dumps([_DIGEST_VERSION, context, sorted(iris)], sort_keys=True)
    return [
        hashlib.sha256(
            (common + canonical_json({k: v for k, v in e.items() if k != "eventID"})).encode()
        ).hexdigest()
        for e in events
    ]


def event_hashes(
    events: Sequence[dict[str, Any]], context: list[Any], iris: frozenset[str] | None = None
) -> list[str]:
    """The reference event hash (``ni:///sha-256;<hex>?ver=CBV2.0``) of each event, in order.

    ``context``: the document's ``@context`` without the EPCIS context (inline objects and
    bundled URLs; :func:`traceability.jsonld.check_context` must have passed); ``iris``:
    :func:`document_iris` when some of the document's events are left out. Raises
    ``HashError`` for an event the algorithm cannot hash and PyLD's ``JsonLdError`` for a
    context PyLD refuses."""
    if not events:
        return []
    document = hash_document(events, context)
    bare = _BareWords(set(vocabulary_iris(document) if iris is None else iris))
    namespaces = _namespaces(bare.replace(document["@context"]))
    canonical = _Canonical()
    prehashes: list[str] = []
    with _LOCK:
        _library_pass(document, bare, namespaces, canonical, prehashes)
    return [
        "ni:///sha-256;" + hashlib.sha256(p.encode("utf-8")).hexdigest() + "?ver=CBV2.0"
        for p in prehashes
    ]


def _event_prehash(event: dict[str, Any], bare: _BareWords) -> str:
    simple = json_to_py._json_to_py(bare.replace(event))
    return _prehash(deep_structure_correction(simple))


# --- templates: one library run per distinct event shape --------------------------------------
#
# Every leaf value of an event is replaced by a token that sorts as the value does
# (U+E000, its rank among the event's texts in fixed-width hex, U+E001); the library
# builds the pre-hash string of this skeleton once per distinct skeleton, recording which
# canonical form (value or time) it asked for each token; each event's own canonical
# values are then put in place of the tokens. The result is the library's own string
# when the tokens are ordered as the canonical values are (strictly, and none a prefix
# of another: the library also sorts pre-hash strings); any other event, or a text
# holding the token characters, goes through the library whole.

_T0, _T1 = "\ue000", "\ue001"
_TOKEN = re.compile("\ue000([0-9a-f]{6})\ue001")
_KEPT = frozenset({"type", "#text", "rdfs:comment", "comment"})  # values the library reads


class _NoTemplate(Exception):
    pass


def _leaves(node: Any, texts: list[str], groups: list[range], bare: _BareWords) -> Any:
    """``node`` (bare words replaced) with each leaf value replaced by its index in
    ``texts`` (a ``_Leaf``); ``groups`` gets the indices under each list of two or more
    items (the library compares values only between the items of one list)."""
    if isinstance(node, dict):
        shape = {}
        for key, value in node.items():
            if key.startswith("@xmlns"):
                raise _NoTemplate  # the library changes its namespaces as it reads these
            if key in _KEPT:
                shape[key] = bare.replace(value)
            elif isinstance(value, dict | list):
                shape[key] = _leaves(value, texts, groups, bare)
            else:
                shape[key] = _leaf(value, texts, bare)
        return shape
    if isinstance(node, list):
        first = len(texts)
        items = [
            _leaves(item, texts, groups, bare)
            if isinstance(item, dict | list)
            else _leaf(item, texts, bare)
            for item in node
        ]
        if len(node) > 1:
            groups.append(range(first, len(texts)))
        return items
    return _leaf(node, texts, bare)


def _leaf(node: Any, texts: list[str], bare: _BareWords) -> Any:
    if isinstance(node, str):
        if bare.iris:
            node = bare.word(node)
        text = json_to_py._namespace_replace(node, True) if ":" in node else node
    else:
        text = str(node)  # what the library makes of a number, a boolean, null
    if not text.strip():
        return node  # no value in the pre-hash string: part of the shape
    if _T0 in text or _T1 in text:
        raise _NoTemplate
    texts.append(text)
    return _Leaf(len(texts) - 1)


class _Leaf(int):
    pass


def _tokens(node: Any, token_of: list[str]) -> Any:
    if isinstance(node, _Leaf):
        return token_of[node]
    if isinstance(node, dict):
        return {key: _tokens(value, token_of) for key, value in node.items()}
    if isinstance(node, list):
        return [_tokens(item, token_of) for item in node]
    return node


class _Template:
    """The library's pre-hash string of one event skeleton as a ``str.format`` pattern,
    each token a field numbered by its rank; ``forms``: rank -> "value" or "time", the
    canonical form the library asked for."""

    __slots__ = ("forms", "pattern")

    def __init__(self, template: str, forms: dict[int, str]):
        parts = _TOKEN.split(template)
        literal = [p.replace("{", "{{").replace("}", "}}") for p in parts[0::2]]
        fields = [f"{{{int(p, 16)}}}" for p in parts[1::2]]
        self.pattern = literal[0] + "".join(
            f + text for f, text in zip(fields, literal[1:], strict=True)
        )
        self.forms = forms


class _Templates:
    def __init__(self, canonical: _Canonical):
        self.canonical = canonical
        # (the shape with leaf indices, each leaf's rank) -> its template, or None
        self.cache: dict[tuple[str, tuple[int, ...]], _Template | None] = {}

    def prehash(self, event: dict[str, Any], bare: _BareWords) -> str:
        try:
            return self._from_template(event, bare)
        except _NoTemplate:
            return _event_prehash(event, bare)

    def _from_template(self, event: dict[str, Any], bare: _BareWords) -> str:
        texts: list[str] = []
        groups: list[range] = []
        shape = _leaves(event, texts, groups, bare)
        ranked = sorted(set(texts))
        rank_of = {text: i for i, text in enumerate(ranked)}
        ranks = tuple([rank_of[t] for t in texts])
        # The skeleton (each leaf a token of its rank) is a function of the two.
        key = (json.dumps(shape), ranks)
        template = self.cache.get(key, _MISSING)
        if template is _MISSING:
            template = self.cache[key] = None
            skeleton = _tokens(shape, [f"{_T0}{rank:06x}{_T1}" for rank in ranks])
            template = self.cache[key] = self._build(skeleton)
        if template is None:
            raise _NoTemplate  # this shape has no template
        values: list[str | None] = [None] * len(ranked)
        canonical = self.canonical
        known_values, known_times = canonical.values, canonical.times
        for rank, form in template.forms.items():
            text = ranked[rank].strip()
            if form == "time":
                found = known_times.get(text) or canonical.time(text)
            else:
                found = known_values.get(text) or canonical.value(text)
            if not found:
                raise _NoTemplate
            values[rank] = found
        for group in groups:
            used = [values[i] for i in sorted({ranks[j] for j in group})]
            present = [v for v in used if v is not None]
            for before, after in itertools.pairwise(present):
                if not before < after or after.startswith(before):
                    raise _NoTemplate  # canonical values sort otherwise than the texts
        return template.pattern.format(*values)

    def _build(self, skeleton: Any) -> _Template | None:
        """The template of ``skeleton``; None when the library's string cannot be cut at
        the tokens (a text given two canonical forms, a token left as it was)."""
        self.canonical.recording = {}
        try:
            template = _prehash(deep_structure_correction(json_to_py._json_to_py(skeleton)))
            kinds = self.canonical.recording
        finally:
            self.canonical.recording = None
        forms: dict[int, str] = {}
        for token, asked in kinds.items():
            if len(asked) != 1:
                return None  # one text, two canonical forms
            forms[int(token[1:-1], 16)] = asked.pop()
        if not {int(t, 16) for t in _TOKEN.findall(template)} <= set(forms):
            return None  # a value the library did not canonicalise
        return _Template(template, forms)


_MISSING: Any = object()


def _typed_lists(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with an empty ``type`` in each bizTransaction, source and destination
    that has none (an empty value does not enter the pre-hash string)."""
    fixed = dict(event)
    for key in ("bizTransactionList", "sourceList", "destinationList"):
        items = event.get(key)
        if isinstance(items, list):
            fixed[key] = [
                {"type": "", **item} if isinstance(item, dict) and "type" not in item else item
                for item in items
            ]
    return fixed


def _library_pass(
    document: dict[str, Any],
    bare: _BareWords,
    namespaces: dict[str, str],
    canonical: _Canonical,
    prehashes: list[str],
) -> None:
    saved = (json_to_py._namespaces, hash_generator._canonize_value)
    saved_time = hash_generator._fix_time_stamp_format
    modules = (hash_generator, json_to_py, dl_normaliser)
    saved_logging = [m.logging for m in modules]
    try:
        for module in modules:
            module.logging = _QUIET
        json_to_py._namespaces = namespaces
        hash_generator._canonize_value = canonical.value
        hash_generator._fix_time_stamp_format = canonical.time
        hash_generator.JOIN_BY = ""
        templates = _Templates(canonical)
        for index, event in enumerate(document["epcisBody"]["eventList"]):
            try:
                prehashes.append(templates.prehash(event, bare))
            except Exception:  # the library drops such an event; retry as documented
                try:
                    prehashes.append(_event_prehash(_typed_lists(event), bare))
                except Exception as exc:
                    raise HashError(index, f"cannot be hashed ({exc!r:.200})") from None
    finally:
        json_to_py._namespaces, hash_generator._canonize_value = saved
        hash_generator._fix_time_stamp_format = saved_time
        for module, saved_module in zip(modules, saved_logging, strict=True):
            module.logging = saved_module
