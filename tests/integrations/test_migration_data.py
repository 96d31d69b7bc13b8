"""The sync migration keeps what was delivered: records the portal holds are adopted,
and a change still waiting as a second record goes as an update instead."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from nguon.db import make_engine
from nguon.migrate import alembic_config

BEFORE = "3c9e5a1f7d20"  # the revision this branch's migration follows


def test_delivered_records_are_adopted_and_a_waiting_second_record_becomes_an_update(
    empty_database: str,
) -> None:
    config = alembic_config(empty_database)
    command.upgrade(config, BEFORE)
    engine = make_engine(empty_database)
    rows = [  # id, record, state, method, remote id, key
        (1, "7", "done", "POST", "TR-0000001", "k-delivered"),
        (2, "7", "pending", "POST", None, "k-second-record"),  # the old bug, waiting
        (3, "8", "pending", "POST", None, "k-first-of-8"),  # a first record: untouched
        (4, "8", "pending", None, None, "k-unfrozen"),
    ]
    with engine.begin() as conn:
        for row_id, record, state, method, remote, key in rows:
            conn.execute(
                text(
                    "INSERT INTO outbox (id, kind, record_id, target, priority, idempotency_key,"
                    " state, attempts, next_attempt_at, remote_id, reasons, payload, method,"
                    " path, created_at, updated_at) VALUES (:id, 'trace_record', :record,"
                    " 'portal', 3, :key, :state, 1, '2026-11-01 00:00:00', :remote, '[]',"
                    " :payload, :method, :path, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"
                ),
                {
                    "id": row_id,
                    "record": record,
                    "key": key,
                    "state": state,
                    "remote": remote,
                    "payload": '{"lot": "L1"}' if method else None,
                    "method": method,
                    "path": "/api/v1/trace-records" if method else None,
                },
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        held = conn.execute(text("SELECT kind, record_id, remote_id, revision FROM portal_record"))
        assert held.all() == [("trace_record", "7", "TR-0000001", 1)]
        found = {
            r.id: r
            for r in conn.execute(
                text("SELECT id, method, payload, idempotency_key, sent_at FROM outbox")
            )
        }
    engine.dispose()
    assert found[1].sent_at is not None and found[2].sent_at is None
    second = found[2]
    assert second.method is None and second.payload is None  # built again, as an update
    assert second.idempotency_key != "k-second-record" and len(second.idempotency_key) == 36
    assert (found[3].method, found[3].idempotency_key) == ("POST", "k-first-of-8")
    assert found[4].idempotency_key == "k-unfrozen"
