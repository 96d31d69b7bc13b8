"""Event hashes: the fast path gives exactly the reference library's eventIDs.

The oracle is the unmodified ``epcis_event_hash_generator`` (``epcis_hash.reference_
hashes``, or the library run on the document as published). Checked on every GS1 example
document (gs1/EPCIS, ``JSON/``, vendored under ``data/gs1_epcis_examples``), on the
library's own test vectors (``data/epcis_hash_vectors``: the expected hashes it ships)
and on hypothesis-generated events.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from epcis_event_hash_generator import hash_generator, json_to_py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traceability import epcis, epcis_hash

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted((DATA / "gs1_epcis_examples").rglob("*.jsonld"))
VECTORS = sorted((DATA / "epcis_hash_vectors").glob("*.jsonld"))
# GS1 examples the reference library itself cannot hash (checked below, one by one).
LIBRARY_FAILS = {
    "Example-TransactionEvents-2020_07_03y.jsonld",  # object term definitions; untyped
    "transformation_event_all_possible_fields.jsonld",  # redefines a protected term
}


def _events(document: dict[str, Any]) -> list[dict[str, Any]] | None:
    body = document.get("epcisBody", {})
    if "eventList" in body:
        return body["eventList"]
    return [body["event"]] if "event" in body else None


def _library(document: dict[str, Any]) -> list[str]:
    """The library on the document as published (its own @context, order, everything)."""
    json_to_py._namespaces = {}
    simple = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document))
    return hash_generator.epcis_hashes_from_events(simple)


def _ours(document: dict[str, Any]) -> list[str]:
    return epcis.event_hashes(_events(document), epcis.extra_context(document.get("@context")))


def _hashable(paths: list[Path]) -> list[Path]:
    return [
        p
        for p in paths
        if p.name not in LIBRARY_FAILS and _events(json.loads(p.read_text("utf-8")))
    ]


def test_the_examples_are_vendored() -> None:
    assert len(EXAMPLES) >= 45 and (DATA / "gs1_epcis_examples" / "LICENSE").exists()
    assert len(VECTORS) >= 15 and (DATA / "epcis_hash_vectors" / "LICENSE").exists()


@pytest.mark.parametrize("path", _hashable(EXAMPLES), ids=lambda p: p.name)
def test_gs1_example_documents_hash_as_the_reference(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    assert _ours(document) == _library(document)


@pytest.mark.parametrize("path", _hashable(VECTORS), ids=lambda p: p.name)
def test_the_reference_librarys_test_vectors(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    expected = path.with_suffix(".hashes").read_text().split()
    assert _ours(document) == expected == _library(document)


def test_object_term_definitions_and_an_untyped_biz_transaction() -> None:
    """GS1's rail example: the library fails on its @context (terms defined by objects)
    and on its first event (a bizTransaction without type). Ours: the hashes the library
    gives once the context keeps its prefixes only and the type is empty (first)."""
    path = DATA / "gs1_epcis_examples/JSON/Example-TransactionEvents-2020_07_03y.jsonld"
    document = json.loads(path.read_text("utf-8"))
    with pytest.raises(TypeError):
        _library(document)
    ours = _ours(document)
    fixed = copy.deepcopy(document)
    fixed["@context"] = [fixed["@context"][0], {"rail": "urn:gs1:epcisapp:rail:"}]
    item = fixed["epcisBody"]["eventList"][0]["bizTransactionList"][0]
    fixed["epcisBody"]["eventList"][0]["bizTransactionList"][0] = {"type": "", **item}
    assert ours == _library(fixed)


def test_a_context_json_ld_refuses_is_a_400_naming_the_context() -> None:
    path = (
        DATA / "gs1_epcis_examples/JSON/WithFullCombinationOfFields/"
        "transformation_event_all_possible_fields.jsonld"
    )
    document = json.loads(path.read_text("utf-8"))
    with pytest.raises(epcis.EpcisError) as refused:
        _ours(document)
    assert refused.value.path == "/@context" and "protected" in refused.value.message


def test_one_distinct_shape_is_expanded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyld import jsonld as pyld

    sizes = []
    expand = pyld.expand

    def counting(document: Any, options: Any = None) -> Any:
        sizes.append(len(document["epcisBody"]["eventList"]))
        return expand(document, options)

    monkeypatch.setattr(epcis_hash.pyld, "expand", counting)
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": f"2026-05-01T{h:02d}:00:00+07:00",
            "eventTimeZoneOffset": "+07:00",
            "epcList": [f"https://id.gs1.org/01/08930000000019/21/S{h}"],
            "action": "OBSERVE",
            "bizStep": "shipping",
        }
        for h in range(24)
    ]
    whole: list[int] = []
    library = epcis_hash._event_prehash
    monkeypatch.setattr(epcis_hash, "_event_prehash", lambda e, b: whole.append(1) or library(e, b))
    hashes = epcis.event_hashes(events, [])
    assert sizes == [1]
    assert whole == []  # every event from the one template, none through the library whole
    assert hashes == epcis_hash.reference_hashes(events, [])


# --- property: arbitrary events in the shapes EPCIS allows -----------------------------------

WORDS = ["shipping", "receiving", "packing", "in_progress", "active", "inactive", "sold"]
STEP = st.sampled_from(
    [
        *WORDS,
        "urn:epcglobal:cbv:bizstep:shipping",
        "https://ref.gs1.org/cbv/BizStep-receiving",
        "https://example.org/steps/drying",
        "cbv:BizStep-packing",
    ]
)
DISP = st.sampled_from(
    ["in_progress", "active", "inactive", "urn:epcglobal:cbv:disp:in_transit", "sellable"]
)
EPC = st.one_of(
    st.builds(
        "https://id.gs1.org/01/0893000000001{}/21/{}".format,
        st.integers(0, 9),
        st.from_regex(r"[A-Za-z0-9]{1,8}", fullmatch=True),
    ),
    st.builds(
        "urn:epc:id:sgtin:893000.0{}.{}".format,
        st.from_regex(r"[0-9]{6}", fullmatch=True),
        st.integers(1, 10**6),
    ),
    st.builds("urn:epc:id:sscc:893000.{}".format, st.from_regex(r"[0-9]{11}", fullmatch=True)),
)
TIME = st.builds(
    "{}-0{}-1{}T{:02d}:{:02d}:{:02d}{}{}".format,
    st.integers(2000, 2030),
    st.integers(1, 9),
    st.integers(0, 9),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", ".5", ".123", ".999", ".1234", ".000001"]),
    st.sampled_from(["Z", "+07:00", "-05:30", "+00:00"]),
)


def finite_or_text(text: str) -> bool:
    """Not a text Python reads as an infinite float ("inf", "-Infinity", "1e999"): the
    library crashes on those and drops the event (see the test below)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return True


QUANTITY = st.fixed_dictionaries(
    {
        "epcClass": st.builds(
            "https://id.gs1.org/01/0893000000001{}/10/{}".format,
            st.integers(0, 9),
            st.from_regex(r"L[0-9]{1,4}", fullmatch=True),
        )
    },
    optional={
        "quantity": st.one_of(st.integers(0, 1000), st.sampled_from([1.5, 10.0, 0.25])),
        "uom": st.sampled_from(["KGM", "LTR"]),
    },
)
PARTY = st.fixed_dictionaries(
    {"source": st.sampled_from(["urn:epc:id:pgln:893000.00001", "urn:epc:id:sgln:893000.1.0"])},
    optional={"type": st.sampled_from(["owning_party", "location", "possessing_party"])},
)
OBJECT_EVENT = st.fixed_dictionaries(
    {
        "type": st.just("ObjectEvent"),
        "eventTime": TIME,
        "eventTimeZoneOffset": st.sampled_from(["+07:00", "-05:30", "+00:00"]),
        "action": st.sampled_from(["ADD", "OBSERVE", "DELETE"]),
    },
    optional={
        "epcList": st.lists(EPC, max_size=3),
        "quantityList": st.lists(QUANTITY, max_size=2),
        "bizStep": STEP,
        "disposition": DISP,
        "readPoint": st.fixed_dictionaries({"id": st.sampled_from(["urn:epc:id:sgln:1.2.3"])}),
        "bizLocation": st.fixed_dictionaries(
            {"id": st.sampled_from(["https://id.gs1.org/414/8930000000019", "urn:x:y"])}
        ),
        "sourceList": st.lists(PARTY, min_size=1, max_size=2),
        "bizTransactionList": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["po", "inv"]), "bizTransaction": st.just("urn:t:1")}
            ),
            min_size=1,
            max_size=2,
        ),
        "ex:note": st.one_of(st.sampled_from(WORDS), st.text(max_size=8).filter(finite_or_text)),
        "ex:grade": st.integers(0, 5),
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OBJECT_EVENT, min_size=1, max_size=6), st.booleans())
def test_generated_events_hash_as_the_reference(events: list[dict], prefixed: bool) -> None:
    context: list[Any] = [{"ex": "https://example.org/ex/"}] if prefixed else []
    if not prefixed:
        events = [{k: v for k, v in e.items() if not k.startswith("ex:")} for e in events]
    # An untyped source or bizTransaction: the library drops the event; ours is the
    # library's hash with an empty type (see epcis_hash).
    typed = [epcis_hash._typed_lists(e) for e in events]
    assert epcis.event_hashes(events, context) == epcis_hash.reference_hashes(typed, context)


@pytest.mark.parametrize("text", ["inf", "-Infinity", "1e999"])
def test_a_value_the_library_cannot_hash_is_refused_naming_the_event(text: str) -> None:
    """The reference library reads such a text as a float, fails converting it, and drops
    the event (no hash to compare with): the repository refuses it, naming the event,
    rather than inventing an eventID or answering 500."""
    event = {
        "type": "ObjectEvent",
        "eventTime": "2026-01-10T00:00:00Z",
        "eventTimeZoneOffset": "+00:00",
        "action": "ADD",
        "ex:note": text,
    }
    context = [{"ex": "https://example.org/ex/"}]
    assert epcis_hash.reference_hashes([event], context) == []  # dropped by the library
    with pytest.raises(epcis.EpcisError) as refused:
        epcis.event_hashes([dict(event), dict(event, action="OBSERVE")], context)
    assert refused.value.path == "/0"


def test_xml_namespace_declarations_in_events() -> None:
    """``@xmlns:`` keys (JSON converted from XML) change the library's namespaces as it
    reads them: such events are hashed by the library whole, in order."""
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": "2026-05-01T00:00:00+07:00",
            "eventTimeZoneOffset": "+07:00",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:893000.012345.1"],
            "@xmlns:ex": "https://example.org/ex/",
            "ex:grade": "A",
        },
        {
            "type": "ObjectEvent",
            "eventTime": "2026-05-01T01:00:00+07:00",
            "eventTimeZoneOffset": "+07:00",
            "action": "OBSERVE",
            "epcList": ["urn:epc:id:sgtin:893000.012345.2"],
            "ex:grade": "B",
        },
    ]
    assert epcis.event_hashes(events, []) == epcis_hash.reference_hashes(events, [])


LINK_HEADS = [
    "https://id.gs1.org/01/08930000000019/21/",
    "https://id.gs1.org/01/08930000000019/10/LN2026-01/21/",
    "https://id.gs1.org/01/08930000000018/21/",  # a wrong check digit
    "https://id.gs1.org/01/0893000000001/21/",  # a GTIN one digit short
    "https://example.org/shop/01/08930000000019/21/",
    "http://id.gs1.org/8004/8930000000019/21/",
    "https://id.gs1.org/00/389300000000000019/21/",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(LINK_HEADS),
            st.text("Aa0Zz9Ss", min_size=1, max_size=22),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_serials_of_one_pattern_canonicalise_as_the_reference(
    links: list[tuple[str, str]],
) -> None:
    """The canonical form of a Digital Link with a serial, taken from another serial of
    the same pattern on the same link, is the library's own (in any order of arrival)."""
    canonical = epcis_hash._Canonical()
    for head, serial in links:
        link = head + serial
        assert canonical.value(link) == hash_generator._canonize_value(link), link
