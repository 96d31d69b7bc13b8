"""Import and export of assets, authorised users, production areas and OCOP products,
as CSV or JSON. An import checks every row and reports each row's errors; if any row is
bad, or on a dry run, nothing is kept. A row whose natural key (application number,
area code, asset + user code, decision + name) exists updates that record."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError
from marshmallow import fields as mf
from sqlalchemy import select

from nguon.db import db
from nguon.errors import DomainValidationError, flatten_messages
from nguon.i18n import _
from nguon.inputs import InvalidInput, load_json
from registry import services
from registry.models import AuthorisedUser, IPAsset, OcopProduct, ProductionArea
from registry.schemas import AreaSchema, AssetSchema, AuthorisedUserSchema, OcopSchema

LIST_SEPARATOR = ";"


@dataclass(frozen=True)
class Entity:
    model: Any
    schema: type[Schema]
    save: Callable[..., Any]
    find: Callable[[dict[str, Any]], Any]
    export_exclude: tuple[str, ...] = ()


def _find_asset(data: dict[str, Any]) -> IPAsset | None:
    if data.get("application_number"):
        return db.session.scalar(
            select(IPAsset).where(IPAsset.application_number == data["application_number"])
        )
    return db.session.scalar(
        select(IPAsset).where(IPAsset.kind == data["kind"], IPAsset.name == data["name"])
    )


def _find_area(data: dict[str, Any]) -> ProductionArea | None:
    code = str(data.get("code", "")).strip().upper()
    return db.session.scalar(select(ProductionArea).where(ProductionArea.code == code))


def _find_user(data: dict[str, Any]) -> AuthorisedUser | None:
    return db.session.scalar(
        select(AuthorisedUser).where(
            AuthorisedUser.asset_id == data["asset_id"],
            AuthorisedUser.user_code == data["user_code"],
        )
    )


def _find_ocop(data: dict[str, Any]) -> OcopProduct | None:
    return db.session.scalar(
        select(OcopProduct).where(
            OcopProduct.decision_number == data["decision_number"],
            OcopProduct.name == data["name"],
        )
    )


def _save_asset(data: dict[str, Any], existing: IPAsset | None) -> IPAsset:
    if existing is not None:
        data = {k: v for k, v in data.items() if k != "status"}
    return services.save_asset(data, existing)


ENTITIES: dict[str, Entity] = {
    "assets": Entity(
        IPAsset,
        AssetSchema,
        _save_asset,
        _find_asset,
        (
            "holder",
            "managing_organisation",
            "status_history",
            "renewals",
            "foreign_protections",
            "documents",
            "expiry_date",
            "demo_fields",
        ),
    ),
    "areas": Entity(
        ProductionArea,
        AreaSchema,
        lambda d, e: services.save_area(d, e),
        _find_area,
        ("owner", "certificates"),
    ),
    "authorised-users": Entity(
        AuthorisedUser,
        AuthorisedUserSchema,
        lambda d, e: services.save_authorised_user(d, e),
        _find_user,
        ("organisation", "status", "status_reason", "status_changed_on"),
    ),
    "ocop": Entity(
        OcopProduct,
        OcopSchema,
        lambda d, e: services.save_ocop_product(d, e),
        _find_ocop,
        ("producer", "expiry_date", "status", "previous_id"),
    ),
}


@dataclass
class RowError:
    row: int
    errors: list[dict[str, str]]


@dataclass
class ImportReport:
    entity: str
    dry_run: bool
    total: int = 0
    created: int = 0
    updated: int = 0
    rows: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rows

    @property
    def kept(self) -> bool:
        return self.ok and not self.dry_run

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "dry_run": self.dry_run,
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "imported": self.kept,
            "rows_with_errors": [{"row": r.row, "errors": r.errors} for r in self.rows],
        }


class ImportFormatError(DomainValidationError):
    """The file itself cannot be read as CSV or JSON."""


def parse_rows(entity: str, payload: bytes | str, fmt: str) -> list[dict[str, Any]]:
    """Rows as dicts ready for the entity's schema; CSV cells are typed by the schema."""
    try:
        text = payload.decode("utf-8-sig") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise ImportFormatError({"file": _("the file is not UTF-8 text")}) from None
    if fmt == "json":
        try:  # strict JSON: no NaN, bounded numbers and nesting, no NUL
            data = load_json(text)
        except InvalidInput as exc:
            raise ImportFormatError({"file": _("not valid JSON: %(reason)s", reason=exc)}) from None
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ImportFormatError(
                {"file": _("JSON must be a list of objects (or {records: [...]})")}
            )
        return data
    if fmt != "csv":
        raise ImportFormatError({"format": _("must be csv or json")})
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ImportFormatError({"file": _("the CSV has no header row")})
    schema_fields = ENTITIES[entity].schema().fields
    unknown = [name for name in reader.fieldnames if name not in schema_fields]
    if unknown:
        raise ImportFormatError(
            {"file": _("unknown CSV columns: %(columns)s", columns=", ".join(unknown))}
        )
    return [_typed_row(row, schema_fields) for row in reader]


def _typed_row(row: dict[str, str], schema_fields: dict[str, mf.Field]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, raw in row.items():
        if name is None or raw is None or raw == "":
            continue
        kind = schema_fields[name]
        if kind.dump_only:
            continue
        if isinstance(kind, mf.List):
            typed[name] = [part.strip() for part in raw.split(LIST_SEPARATOR) if part.strip()]
        elif isinstance(kind, mf.Dict):
            try:
                typed[name] = json.loads(raw)
            except json.JSONDecodeError:
                typed[name] = raw  # the schema reports "Not a valid mapping type."
        else:
            typed[name] = raw
    return typed


def import_rows(entity: str, rows: list[dict[str, Any]], *, dry_run: bool) -> ImportReport:
    """Check and save every row in one savepoint; keep them only if all are good and
    this is not a dry run. Each row also runs in its own savepoint, so one bad row
    does not stop the others from being checked."""
    spec = ENTITIES[entity]
    report = ImportReport(entity=entity, dry_run=dry_run, total=len(rows))
    schema_fields = spec.schema().fields
    outer = db.session.begin_nested()
    for number, row in enumerate(rows, start=1):
        # What an export adds (id, nested summaries) is read-only: drop it, do not refuse it.
        row = {
            k: v for k, v in row.items() if not (k in schema_fields and schema_fields[k].dump_only)
        }
        try:
            data = spec.schema().load(row)
        except ValidationError as exc:
            report.rows.append(RowError(number, flatten_messages(exc.messages)))
            continue
        savepoint = db.session.begin_nested()
        try:
            existing = spec.find(data)
            spec.save(data, existing)
            savepoint.commit()
        except DomainValidationError as exc:
            savepoint.rollback()
            report.rows.append(
                RowError(
                    number, [{"field": f, "message": m} for f, ms in exc.errors.items() for m in ms]
                )
            )
            continue
        if existing is None:
            report.created += 1
        else:
            report.updated += 1
    if report.kept:
        outer.commit()
    else:
        outer.rollback()
    return report


def export_rows(entity: str) -> list[dict[str, Any]]:
    spec = ENTITIES[entity]
    schema = spec.schema(exclude=spec.export_exclude)
    records = db.session.scalars(select(spec.model).order_by(spec.model.id)).all()
    rows = schema.dump(records, many=True)
    for row, record in zip(rows, records, strict=True):
        if entity == "authorised-users":
            row["area_ids"] = [a.id for a in record.areas]
            row.pop("areas", None)
        if entity == "ocop":
            row["asset_ids"] = [a.id for a in record.assets]
            row.pop("assets", None)
        row.pop("is_demo", None)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
