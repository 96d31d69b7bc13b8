"""The audit log: who changed which record, and how, in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from nguon.db import commit_boundary, db
from nguon.models import AuditEntry
from registry.models import Organisation


def entries(app: Flask, table: str, record_id: Any) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.record_table == table, AuditEntry.record_id == str(record_id))
            .order_by(AuditEntry.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def test_insert_update_delete_are_recorded(app: Flask) -> None:
    with app.app_context(), commit_boundary():
        g.audit_actor, g.audit_actor_id = "cli:tester", None
        org = Organisation(
            name="HTX Vải thiều Phượng Sơn", kind="cooperative", tax_code="2400000001"
        )
        db.session.add(org)
        db.session.flush()
        org_id = org.id
    with app.app_context(), commit_boundary():
        org = db.session.get(Organisation, org_id)
        org.name = "HTX Vải thiều Phượng Sơn mới"
        org.phone = "0204 3882 123"
    with app.app_context(), commit_boundary():
        db.session.delete(db.session.get(Organisation, org_id))

    created, changed, deleted = entries(app, "organisation", org_id)
    assert (created.action, changed.action, deleted.action) == ("insert", "update", "delete")
    assert created.actor == "cli:tester"
    assert created.changes["name"] == [None, "HTX Vải thiều Phượng Sơn"]
    assert created.changes["tax_code"] == [None, "2400000001"]
    assert changed.changes == {
        "name": ["HTX Vải thiều Phượng Sơn", "HTX Vải thiều Phượng Sơn mới"],
        "phone": [None, "0204 3882 123"],
    }
    assert changed.actor == "system"
    assert deleted.changes["name"] == ["HTX Vải thiều Phượng Sơn mới", None]


def test_rolled_back_change_leaves_no_audit_row(app: Flask) -> None:
    with pytest.raises(RuntimeError), app.app_context(), commit_boundary():
        org = Organisation(name="HTX không bao giờ tồn tại", kind="cooperative")
        db.session.add(org)
        db.session.flush()
        org_id = org.id
        assert entries_in_session(org_id)  # written at flush, inside the transaction
        raise RuntimeError("abort")
    assert entries(app, "organisation", org_id) == []
    with app.app_context():
        assert db.session.get(Organisation, org_id) is None


def entries_in_session(org_id: int) -> list[AuditEntry]:
    return list(
        db.session.scalars(
            select(AuditEntry).where(
                AuditEntry.record_table == "organisation", AuditEntry.record_id == str(org_id)
            )
        )
    )


def test_request_records_the_user_and_hides_secrets(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    admin = bearer("admin")
    admin_email = client.get("/api/v1/me", headers=admin).json["email"]
    body = {"email": "audited@test.nguon.vn", "role": "officer", "password": "long enough pw"}
    created = client.post("/api/v1/users", json=body, headers={**admin, "X-Request-ID": "req-42"})
    assert created.status_code == 201
    (entry,) = entries(app, "user_account", created.json["id"])
    assert entry.actor == admin_email
    assert entry.request_id == "req-42"
    assert entry.changes["email"] == [None, "audited@test.nguon.vn"]
    assert "password_hash" not in entry.changes


def test_refused_request_writes_nothing(
    app: Flask, client: FlaskClient, bearer: Callable[..., dict]
) -> None:
    """A request that fails validation after a flush leaves neither the row nor its audit."""
    admin = bearer("admin")
    body = {"email": "dup@test.nguon.vn", "role": "officer", "password": "long enough pw"}
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
    with app.app_context():
        before = db.session.scalar(select(db_count()))
    assert client.post("/api/v1/users", json=body, headers=admin).status_code == 409
    with app.app_context():
        assert db.session.scalar(select(db_count())) == before


def db_count() -> Any:
    from sqlalchemy import func

    return func.count(AuditEntry.id)


def test_officer_browses_a_records_history(
    app: Flask, logged_in: Callable[..., FlaskClient], make_org: Callable[..., Any]
) -> None:
    org_id = make_org(name="HTX Na dai Lục Nam")
    client = logged_in("officer")
    page = client.get(f"/audit/organisation/{org_id}", follow_redirects=True)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "HTX Na dai Lục Nam" in html
    # In words: the record named and linked, field labels, kinds in words, no table names.
    assert f'href="/registry/manage/organisations/{org_id}">Tổ chức HTX Na dai Lục Nam</a>' in html
    assert "<dt>Tên</dt>" in html and "<dt>Loại</dt>" in html and "hợp tác xã" in html
    assert "organisation #" not in html and "name_key" not in html

    api = client.get(f"/api/v1/audit?table=organisation&record={org_id}")
    assert api.status_code == 200
    assert [e["action"] for e in api.json] == ["insert"]
    assert "X-Pagination" in api.headers


def test_the_audit_log_says_who_acted_in_words(
    app: Flask, logged_in: Callable[..., FlaskClient], make_user: Callable[..., Any]
) -> None:
    """A user by name and email, a command by its name and OS user, a system task by name,
    a member of the public as such; never a bare "anonymous" or "cli:root"."""
    from nguon.audit_words import actor_words

    with app.test_request_context():
        assert actor_words("cli:root (nguon demo load)", None, {}) == (
            "lệnh nguon demo load, do root chạy"
        )
        assert actor_words("system:clone-detection", None, {}) == "hệ thống: clone detection"
        assert actor_words("anonymous", None, {}) == "người dân (không có tài khoản)"
        assert actor_words("a@b.vn", 7, {7: "Chị Lan (a@b.vn)"}) == "Chị Lan (a@b.vn)"
