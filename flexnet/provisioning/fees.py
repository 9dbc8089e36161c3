"""The fee ledger (§ 6.3): a lost Yubikey costs the practice its replacement and licence.

The fee is owed the moment the loss is recorded, whichever comes first: a loss lock
(``flexnet lock key SERIAL --cause loss``) or a replacement of a lost key (``flexnet
yubikey replace BSNR --lost``); the other one finds it recorded and adds nothing (one
row per key, a unique key in the schema). Accounting then records the invoice and the
payment, or staff waive it with a reason; each step names who recorded it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from flexnet import audit
from flexnet.audit import Actor, AuditTag, Subject
from flexnet.days import check_day
from flexnet.errors import ConflictError, NotFoundError, ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.models import LossFee, Token
from flexnet.ops import germancsv
from flexnet.textrules import REASON_MAX_LENGTH, clean_line


def record_loss(
    session: Session, token: Token, *, amount_cents: int, actor: Actor, now: datetime
) -> LossFee | None:
    """The fee for ``token``'s loss, recorded once: a second report of the same loss
    returns the fee recorded first. None for a key that belongs to no practice."""
    if amount_cents < 0:
        raise ValidationError("Die Gebühr kann nicht negativ sein")
    known = session.scalar(select(LossFee).where(LossFee.token_id == token.id))
    if known is not None or token.practice_id is None:
        return known
    fee = LossFee(
        practice_id=token.practice_id,
        token_id=token.id,
        serial=token.serial,
        amount_cents=amount_cents,
        owed_on=now.astimezone(BERLIN).date(),
        recorded_by=actor.name,
        recorded_at=now,
    )
    session.add(fee)
    session.flush()
    audit.record(
        session,
        AuditTag.FEE_OWE,
        actor=actor,
        subject=Subject("token", token.serial),
        data={"fee": fee.id, "amount_cents": amount_cents},
        now=now,
    )
    return fee


def fees(session: Session, *, open_only: bool = False) -> list[LossFee]:
    """The ledger, oldest first; ``open_only``: neither paid nor waived."""
    query = select(LossFee).options(selectinload(LossFee.practice))
    if open_only:
        query = query.where(LossFee.paid_on.is_(None), LossFee.waived_on.is_(None))
    return list(session.scalars(query.order_by(LossFee.owed_on, LossFee.id)))


def get_fee(session: Session, fee_id: int) -> LossFee:
    fee = session.get(LossFee, fee_id, with_for_update=True)
    if fee is None:
        raise NotFoundError(f"Keine Gebühr Nr. {fee_id}")
    return fee


def _day(on: date, fee: LossFee, today: date) -> date:
    check_day(on, field="Datum")
    if on > today:
        raise ValidationError("Das Datum liegt in der Zukunft")
    if on < fee.owed_on:
        raise ValidationError(f"Die Gebühr ist erst seit dem {fee.owed_on:%d.%m.%Y} offen")
    return on


def _refuse_closed(fee: LossFee) -> None:
    if fee.waived_on is not None:
        raise ConflictError(f"Gebühr Nr. {fee.id} wurde am {fee.waived_on:%d.%m.%Y} erlassen")
    if fee.paid_on is not None:
        raise ConflictError(f"Gebühr Nr. {fee.id} wurde am {fee.paid_on:%d.%m.%Y} bezahlt")


def invoice(session: Session, *, fee_id: int, on: date, actor: Actor, now: datetime) -> LossFee:
    """The fee was invoiced on ``on`` (once)."""
    fee = get_fee(session, fee_id)
    _refuse_closed(fee)
    if fee.invoiced_on is not None:
        raise ConflictError(f"Gebühr Nr. {fee.id} wurde am {fee.invoiced_on:%d.%m.%Y} berechnet")
    fee.invoiced_on = _day(on, fee, now.astimezone(BERLIN).date())
    fee.invoiced_by = actor.name
    _audit(session, AuditTag.FEE_INVOICE, fee, {"on": on.isoformat()}, actor, now)
    return fee


def pay(session: Session, *, fee_id: int, on: date, actor: Actor, now: datetime) -> LossFee:
    """The fee was paid on ``on``."""
    fee = get_fee(session, fee_id)
    _refuse_closed(fee)
    fee.paid_on = _day(on, fee, now.astimezone(BERLIN).date())
    fee.paid_by = actor.name
    _audit(session, AuditTag.FEE_PAY, fee, {"on": on.isoformat()}, actor, now)
    return fee


def waive(session: Session, *, fee_id: int, reason: str, actor: Actor, now: datetime) -> LossFee:
    """Staff waive the fee with a reason (e.g. the key was found before a replacement)."""
    if not reason.strip():
        raise ValidationError("Bitte einen Grund angeben")
    why = clean_line(reason, field="Grund", max_length=REASON_MAX_LENGTH)
    fee = get_fee(session, fee_id)
    _refuse_closed(fee)
    fee.waived_on = now.astimezone(BERLIN).date()
    fee.waived_by, fee.waive_reason = actor.name, why
    _audit(session, AuditTag.FEE_WAIVE, fee, {"reason": why}, actor, now)
    return fee


def _audit(
    session: Session,
    tag: AuditTag,
    fee: LossFee,
    data: dict[str, object],
    actor: Actor,
    now: datetime,
) -> None:
    audit.record(
        session,
        tag,
        actor=actor,
        subject=Subject("token", fee.serial),
        data={"fee": fee.id, **data},
        now=now,
    )


def state_label(fee: LossFee) -> str:
    """Where the fee stands, in German, as the list and the CSV show it."""
    if fee.waived_on is not None:
        return "erlassen"
    if fee.paid_on is not None:
        return "bezahlt"
    if fee.invoiced_on is not None:
        return "berechnet"
    return "offen"


# The ledger's CSV, as the accounting department imports it: the same from the CLI
# (``flexnet fees list --csv``) and the admin page's download.
CSV_HEADER = (
    "Nr.",
    "BSNR",
    "Betriebsstätte",
    "Yubikey",
    "Betrag (EUR)",
    "Fällig seit",
    "Stand",
    "Berechnet am",
    "Bezahlt am",
    "Erlassen am",
    "Grund",
)


def csv_row(fee: LossFee) -> tuple[object, ...]:
    """One fee as a CSV row (``germancsv``: decimal comma, TT.MM.JJJJ)."""
    return (
        fee.id,
        fee.practice.bsnr,
        fee.practice.name,
        fee.serial,
        germancsv.euro(fee.amount_cents),
        germancsv.day(fee.owed_on),
        state_label(fee),
        germancsv.day(fee.invoiced_on),
        germancsv.day(fee.paid_on),
        germancsv.day(fee.waived_on),
        fee.waive_reason,
    )
