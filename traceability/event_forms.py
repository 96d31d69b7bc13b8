"""The "record a step" form: what a person types becomes the guided event's input, and
the facts that look wrong (a harvest far from the batch's season, a shipment before the
harvest) come back as warnings to confirm before anything is recorded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask_babel import format_date, format_datetime

from nguon.formatting import local_now, parse_local_datetime, time_zone, to_decimal
from nguon.i18n import _, label
from nguon.inputs import is_digits
from traceability import places, services
from traceability.models import Batch

STEPS = ("harvest", "pack", "ship", "receive", "process")
PARTNER_ROLE = {"ship": "destination", "receive": "source"}
SEASON_DAYS = 30  # a harvest this far from the batch's harvest date is questioned
MAX_QUANTITY = Decimal("99999999999")  # the columns hold 14 digits, 3 after the point
FIELDS = (
    "step",
    "event_date",
    "event_clock",
    "quantity",
    "place",
    "place_gln",
    "place_name",
    "partner",
    "partner_name",
    "partner_tax_code",
    "output_batch_id",
    "confirm",
)


def initial_values() -> dict[str, str]:
    """An empty form: the step after nothing is harvest, the time is now where the
    cooperative is (its time zone, not the server's)."""
    now = local_now()
    return {
        "step": "harvest",
        "event_date": now.date().isoformat(),
        "event_clock": now.strftime("%H:%M"),
    }


def values_of(form: Mapping[str, str]) -> dict[str, str]:
    return {name: form.get(name, "") for name in FIELDS}


def steps_for(received: bool) -> tuple[str, ...]:
    """The steps a form offers: a lot another producer shipped to the organisation was
    harvested by its producer, so it is packed, shipped on, received or processed."""
    return tuple(s for s in STEPS if s != "harvest") if received else STEPS


def read(batch: Batch, form: Mapping[str, str], organisation: int | None = None) -> dict[str, Any]:
    """The guided event's input from the posted form; DomainValidationError names each
    field that is wrong. Places and partners entered by hand are saved for next time, as
    ``organisation``'s (default: the batch's producer; a holder of a received lot records
    with its own places and partners)."""
    problems = services.Problems()
    step = form.get("step", "")
    received = organisation is not None and organisation != batch.producer_id
    if step not in steps_for(received):
        problems.add("step", _("choose a step"))
    # event_time: one field holding both (an ISO time as the API takes, or "20/06/2026 06:30")
    typed = form.get("event_date", "") or form.get("event_time", "")
    when = parse_local_datetime(typed, form.get("event_clock", ""))
    if when is None:
        problems.add("event_date", _("a date and time such as 20/06/2026 06:30"))
    quantity = None
    raw_quantity = form.get("quantity", "").strip()
    if raw_quantity:
        quantity = to_decimal(raw_quantity)
        if quantity is None:
            problems.add("quantity", _("a number such as 5,5"))
        elif not (0 < quantity <= MAX_QUANTITY):
            problems.add("quantity", _("must be more than 0"))
    output_batch_id = None
    raw_output = form.get("output_batch_id", "").strip()
    if raw_output:
        if is_digits(raw_output, 9):
            output_batch_id = int(raw_output)
        else:
            problems.add("output_batch_id", _("choose a lot from the list"))
    if step == "process" and output_batch_id is None:
        problems.add("output_batch_id", _("processing needs the lot it makes"))
    has_partner = any(
        form.get(k, "").strip() for k in ("partner", "partner_name", "partner_tax_code")
    )
    if has_partner and step not in PARTNER_ROLE:
        problems.add("partner", _("a partner is named only when shipping or receiving"))
    problems.raise_if_any()
    organisation = batch.producer_id if organisation is None else organisation
    data: dict[str, Any] = {
        "step": step,
        "event_time": when,
        "quantity": quantity,
        "location": places.resolve_place(
            organisation,
            form.get("place", ""),
            form.get("place_gln", ""),
            form.get("place_name", ""),
        ),
        "output_batch_id": output_batch_id,
    }
    if step in PARTNER_ROLE:
        data[PARTNER_ROLE[step]] = places.resolve_partner(
            organisation,
            form.get("partner", ""),
            form.get("partner_name", ""),
            form.get("partner_tax_code", ""),
        )
    return data


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def warnings(batch: Batch, data: Mapping[str, Any]) -> list[str]:
    """What looks wrong about the step, in words: each is shown and must be confirmed."""
    step, when = data["step"], data["event_time"]
    found: list[str] = []
    local_day = when.astimezone(time_zone()).date()
    if when > local_now() + dt.timedelta(minutes=10):
        found.append(_("The time %(when)s is in the future.", when=format_datetime(when)))
    if step == "harvest" and abs((local_day - batch.production_date).days) > SEASON_DAYS:
        found.append(
            _(
                "The harvest on %(day)s is %(days)d days from the batch's harvest date "
                "(%(batch_day)s): outside its season.",
                day=format_date(local_day),
                days=abs((local_day - batch.production_date).days),
                batch_day=format_date(batch.production_date),
            )
        )
    events = services.batch_events(batch)
    harvests = [_aware(e.event_time) for e in events if e.biz_step == "commissioning"]
    later = [e for e in events if e.biz_step in ("packing", "shipping", "receiving")]
    if step in ("pack", "ship", "receive"):
        if harvests and when < min(harvests):
            found.append(
                _(
                    "This step (%(step)s) is before the harvest recorded on %(when)s.",
                    step=label("step", step),
                    when=format_datetime(min(harvests)),
                )
            )
        elif local_day < batch.production_date:
            found.append(
                _(
                    "This step (%(step)s) is before the batch's harvest date %(day)s.",
                    step=label("step", step),
                    day=format_date(batch.production_date),
                )
            )
    if step == "ship":
        packed = [_aware(e.event_time) for e in later if e.biz_step == "packing"]
        if packed and when < min(packed):
            found.append(
                _(
                    "The shipment is before the packing recorded on %(when)s.",
                    when=format_datetime(min(packed)),
                )
            )
    if step == "harvest" and later:
        first = min(_aware(e.event_time) for e in later)
        if when > first:
            found.append(
                _(
                    "The harvest would come after a later step already recorded on %(when)s.",
                    when=format_datetime(first),
                )
            )
    return found
