"""The EPCIS semantics migration: items already stored get their serial (so MATCH_ finds
them in either spelling), and an event may then have its declaration beside it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from nguon.db import make_engine
from nguon.migrate import alembic_config

BEFORE = "a7d3e5f1c2b9"  # the revision this branch's migration follows


def test_stored_items_get_their_serial_and_events_their_declaration_slot(
    empty_database: str,
) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, BEFORE)
    engine = make_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO epcis_event (id, event_id, event_type, event_time, record_time,"
                " document, context) VALUES (1, 'urn:uuid:1', 'ObjectEvent',"
                " '2026-06-10 00:00:00', '2026-06-10 00:00:00', '{}', '[]')"
            )
        )
        for row_id, epc, gtin, lot in (
            (1, "https://id.gs1.org/01/08930000000019/10/L1/21/A%2F1", "08930000000019", "L1"),
            (2, "urn:epc:id:sgtin:8930000.000001.B8R3", "08930000000019", None),
            (3, "https://id.gs1.org/01/08930000000019/10/L1", "08930000000019", "L1"),
            (4, "urn:epc:id:sscc:8930000.0000000001", None, None),
        ):
            conn.execute(
                text(
                    "INSERT INTO event_epc (id, event_pk, role, epc, gtin, lot)"
                    " VALUES (:id, 1, 'epc', :epc, :gtin, :lot)"
                ),
                {"id": row_id, "epc": epc, "gtin": gtin, "lot": lot},
            )
    command.upgrade(config, "head")
    with engine.begin() as conn:
        serials = dict(conn.execute(text("SELECT id, serial FROM event_epc ORDER BY id")).all())
        assert serials == {1: "A/1", 2: "B8R3", 3: None, 4: None}
        conn.execute(
            text(
                "INSERT INTO epcis_event (id, event_id, event_type, event_time, record_time,"
                " document, context, error_declaration) VALUES (2, 'urn:uuid:1', 'ObjectEvent',"
                " '2026-06-10 00:00:00', '2026-06-10 00:00:00', '{}', '[]', :yes)"
            ),
            {"yes": True},
        )
        flags = conn.execute(text("SELECT error_declaration FROM epcis_event ORDER BY id")).all()
        assert [bool(f[0]) for f in flags] == [False, True]
    command.downgrade(config, BEFORE)  # the declaration goes; the event and its items stay
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM epcis_event")).scalars().all() == [1]
        assert len(conn.execute(text("SELECT id FROM event_epc")).all()) == 4
    engine.dispose()
