"""The compliance clock: the daily scan that decides every due notice and deadline, and the records
of what customers chose. Rules per profile live in backorders.compliance; this module writes.

Everything the scan decides is keyed: a ComplianceEvent and a Notification per decision, each with a
unique dedupe key, so a second run for the same day records and sends nothing new.
"""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from inventory.selectors import products_with_stock, stock_levels_lock
from notifications.models import Notification
from notifications.services import notification_create
from orders.models import OrderLine, SalesOrder, ShipmentLine
from orders.selectors import order_lines_lock

from ..compliance import ComplianceProfile, Decision, compliance_profile
from ..models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent
from ..status_links import status_url
from .cancellation import order_cancel
from .placement import LineRequest

logger = logging.getLogger(__name__)
Kind = Notification.Kind
Event = ComplianceEvent.Kind
Consent = ComplianceClock.Consent


@dataclass
class ScanResult:
    clocks_started: int = 0
    clocks_closed: int = 0
    notices: int = 0
    renewed_notices: int = 0
    cancellations: int = 0
    periods_expired: int = 0
    cancellation_offers: int = 0
    status_updates: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self))


def record_event(
    *,
    line: OrderLine,
    kind: str,
    on: date,
    key: str,
    channel: str = ComplianceEvent.Channel.SYSTEM,
    ip: str | None = None,
    **details: object,
) -> bool:
    """Append a timeline event once (by key); False if it was already recorded."""
    try:
        with transaction.atomic():
            ComplianceEvent.objects.create(
                line=line,
                kind=kind,
                on=on,
                channel=channel,
                ip_address=ip,
                dedupe_key=key,
                details={k: (v.isoformat() if isinstance(v, date) else v) for k, v in details.items()},
            )
    except IntegrityError:
        return False
    return True


def line_context(line: OrderLine) -> dict[str, object]:
    backorder = getattr(line, "backorder", None)
    return {
        "sku": line.product.sku,
        "name": line.product.name,
        "quantity": line.quantity,
        "backordered": line.backordered,
        "eta": backorder.eta if backorder is not None and backorder.status == Backorder.Status.WAITING else None,
    }


def notify(
    *,
    kind: str,
    line: OrderLine | None,
    order: SalesOrder,
    key: str,
    lines: list[OrderLine] | None = None,
    scheduled_for=None,
    **context: object,
) -> Notification | None:
    """Create a customer notification for an order (and line) with the standard context."""
    lines = (
        lines if lines is not None else ([line] if line is not None else list(order.lines.select_related("product")))
    )
    return notification_create(
        kind=kind,
        customer=order.customer,
        order=order,
        line=line,
        dedupe_key=key,
        scheduled_for=scheduled_for,
        context={"status_url": status_url(order), "lines": [line_context(x) for x in lines], **context},
    )


def clock_start(*, line: OrderLine, profile: ComplianceProfile, today: date) -> ComplianceClock:
    """The line's clock, started if it has none (T from the order; exempt lines are recorded as such)."""
    order = line.order
    exempt = profile.code == "us_ftc" and (order.cash_on_delivery or line.product.ftc_exempt)
    clock, created = ComplianceClock.objects.get_or_create(
        line=line,
        defaults={
            "profile": profile.code,
            "ship_by": profile.ship_by(order),
            "state": ComplianceClock.State.EXEMPT if exempt else ComplianceClock.State.OPEN,
        },
    )
    if created:
        record_event(
            line=line,
            kind=Event.CLOCK_STARTED,
            on=today,
            key=f"clock:{line.pk}",
            ship_by=clock.ship_by,
            profile=profile.code,
            exempt=exempt,
        )
    return clock


@transaction.atomic
def _cancel_waiting(
    *,
    clock: ComplianceClock,
    profile: ComplianceProfile,
    today: date,
    kind: str,
    reason: str,
    channel: str = ComplianceEvent.Channel.SYSTEM,
    ip: str | None = None,
) -> int:
    """Cancel what still waits on the clock's line, close the clock with its refund due date, record and tell.

    Locks first (stock, the line, the clock) and reads what waits under the lock, so a repeated or
    concurrent request cancels nothing twice and never reaches allocated units.
    """
    line = clock.line
    stock_levels_lock(product_ids=[line.product_id], active_only=False)
    [locked_line] = order_lines_lock(line_ids=[line.pk])
    clock = ComplianceClock.objects.select_for_update(of=("self",)).get(pk=clock.pk)
    if clock.state in (ComplianceClock.State.CANCELLED, ComplianceClock.State.SHIPPED):
        return 0
    units = locked_line.backordered
    if units:
        order_cancel(order=line.order, lines=[LineRequest(line.product.sku, units)], waiting_only=True)
        line.refresh_from_db()
    refund_due = profile.refund_due(line.order, today)
    ComplianceClock.objects.filter(pk=clock.pk).update(
        state=ComplianceClock.State.CANCELLED,
        cancelled_on=today,
        refund_due_by=refund_due,
        refund_units=clock.refund_units + units,
        consent_deadline=None,
    )
    record_event(
        line=line, kind=kind, on=today, key=f"cancel:{line.pk}", channel=channel, ip=ip, units=units, reason=reason
    )
    record_event(
        line=line,
        kind=Event.REFUND_DUE,
        on=today,
        key=f"refund:{line.pk}",
        channel=channel,
        refund_due_by=refund_due,
        units=units,
    )
    notify(
        kind=Kind.CANCELLATION_CONFIRMED,
        line=line,
        order=line.order,
        key=f"cancellation_confirmed:{line.pk}",
        refund_due_by=refund_due,
        cancelled_lines=[{"sku": line.product.sku, "name": line.product.name, "quantity": units, "units": units}],
        reason=reason,
    )
    return units


def _apply(
    decision: Decision, clock: ComplianceClock, profile: ComplianceProfile, today: date, result: ScanResult
) -> None:
    line = clock.line
    if decision.action == "cancel":
        _cancel_waiting(clock=clock, profile=profile, today=today, kind=Event.DEEMED_CANCELLED, reason=decision.reason)
        result.cancellations += 1
        return
    if decision.action == "period_expired":
        ComplianceClock.objects.filter(pk=clock.pk).update(revised_date=None)
        record_event(line=line, kind=Event.ADDITIONAL_PERIOD_EXPIRED, on=today, key=f"period_expired:{line.pk}")
        notify(
            kind=Kind.CANCELLATION_OFFER,
            line=line,
            order=line.order,
            key=f"cancellation_offer:{line.pk}:period",
            days_waiting=(today - line.order.placed_at.date()).days,
            substitutes=_substitutes(line),
            coupon_code=BackorderPolicy.current().coupon_code,
            profile=profile.code,
            period_expired=True,
        )
        result.periods_expired += 1
        return
    renewed = decision.action == "renewed_notice"
    number = clock.notices_sent + 1
    kind = Kind.RENEWED_DELAY_NOTICE if renewed else Kind.DELAY_NOTICE
    notification = notify(
        kind=kind,
        line=line,
        order=line.order,
        key=f"{kind}:{line.pk}:{number}",
        ship_by=clock.ship_by,
        revised_date=decision.revised_date,
        needs_consent=decision.needs_consent,
        consent_deadline=decision.consent_deadline,
        profile=profile.code,
        additional_period_end=decision.revised_date if profile.code == "eu_crd" else None,
        essential=line.order.delivery_essential,
        reason=decision.reason,
    )
    deemed = not decision.needs_consent and not renewed and profile.code == "us_ftc"
    ComplianceClock.objects.filter(pk=clock.pk).update(
        notices_sent=number,
        last_notice_on=today,
        revised_date=decision.revised_date,
        consent=Consent.DEEMED if deemed else Consent.NONE,
        consent_deadline=decision.consent_deadline,
    )
    record_event(
        line=line,
        kind=Event.RENEWED_NOTICE_SENT if renewed else Event.NOTICE_SENT,
        on=today,
        key=f"notice:{line.pk}:{number}",
        revised_date=decision.revised_date,
        needs_consent=decision.needs_consent,
        consent_deadline=decision.consent_deadline,
        subject=notification.subject if notification else "",
        notification=notification.pk if notification else None,
    )
    if deemed:
        record_event(
            line=line,
            kind=Event.CONSENT_DEEMED,
            on=today,
            key=f"consent_deemed:{line.pk}:{number}",
            until=decision.revised_date,
        )
    if renewed:
        result.renewed_notices += 1
    else:
        result.notices += 1


def _substitutes(line: OrderLine) -> list[dict[str, str]]:
    subs = products_with_stock(line.product.substitutes.all()).filter(total_available__gt=0).order_by("sku")[:5]
    return [{"sku": p.sku, "name": p.name} for p in subs]


def _batches(qs, batch_size: int) -> Iterable[list]:
    last = 0
    while True:
        chunk = list(qs.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def backorders_scan(
    *, as_of: date | None = None, batch_size: int = 500, progress: Callable[[str], None] | None = None
) -> ScanResult:
    """Decide every due notice and deadline for all open lines as of `as_of` (default today).

    1. Start a clock for every waiting line that has none (T from the order and the profile).
    2. Close clocks whose line has nothing left to ship.
    3. For each open clock with units waiting, ask the profile what is due and do it: a delay notice,
       a renewed notice, a deemed cancellation (with refund due date), or the end of an additional period.
    4. Cancellation offers (waited >= policy days, or no ETA) and periodic status updates.
    Idempotent: decisions are keyed, so a second run for the same day changes nothing. Works in bounded
    batches, one transaction each.
    """
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    profile = compliance_profile(policy)
    result = ScanResult()
    say = progress or (lambda _msg: None)

    unclocked = OrderLine.objects.filter(backordered__gt=0, compliance__isnull=True).select_related("order", "product")
    for chunk in _batches(unclocked, batch_size):
        with transaction.atomic():
            for line in chunk:
                clock_start(line=line, profile=profile, today=today)
        result.clocks_started += len(chunk)
    say(f"clocks started: {result.clocks_started}")

    _record_shipments(today=today, batch_size=batch_size)
    result.clocks_closed = ComplianceClock.objects.filter(
        state=ComplianceClock.State.OPEN, line__backordered=0, line__allocated=0
    ).update(state=ComplianceClock.State.SHIPPED)

    open_clocks = ComplianceClock.objects.filter(
        state=ComplianceClock.State.OPEN, line__backordered__gt=0
    ).select_related("line__order__customer", "line__product", "line__backorder")
    seen = 0
    for chunk in _batches(open_clocks, batch_size):
        for clock in chunk:
            backorder = getattr(clock.line, "backorder", None)
            eta = backorder.eta if backorder is not None else None
            decision = compliance_profile(policy, clock.profile).decide(clock, eta=eta, today=today)
            if decision.action != "none":
                with transaction.atomic():
                    _apply(decision, clock, compliance_profile(policy, clock.profile), today, result)
        seen += len(chunk)
        say(f"clocks checked: {seen}")

    _offers_and_updates(policy=policy, today=today, batch_size=batch_size, result=result)
    say(str(result))
    return result


def _record_shipments(*, today: date, batch_size: int) -> None:
    """Put every shipment of a clocked line on its timeline (once each), dated the day it was handed over."""
    recorded = ComplianceEvent.objects.filter(dedupe_key=Concat(Value("shipped:"), Cast(OuterRef("pk"), CharField())))
    shipments = (
        ShipmentLine.objects.filter(line__compliance__isnull=False, shipment__shipped_at__date__lte=today)
        .exclude(Exists(recorded))
        .select_related("shipment", "line")
    )
    for chunk in _batches(shipments, batch_size):
        with transaction.atomic():
            for shipped in chunk:
                record_event(
                    line=shipped.line,
                    kind=Event.SHIPPED,
                    on=timezone.localdate(shipped.shipment.shipped_at),
                    key=f"shipped:{shipped.pk}",
                    units=shipped.quantity,
                    shipment=shipped.shipment_id,
                )


def _offers_and_updates(*, policy: BackorderPolicy, today: date, batch_size: int, result: ScanResult) -> None:
    offered = Notification.objects.filter(line=OuterRef("line"), kind=Kind.CANCELLATION_OFFER)
    cutoff = today - timedelta(days=policy.cancellation_offer_days)
    due_offers = (
        Backorder.objects.filter(status=Backorder.Status.WAITING, placed_at__date__lte=today)
        .filter(Q(placed_at__date__lte=cutoff) | Q(eta__isnull=True))
        .exclude(Exists(offered))
        .select_related("line__order__customer", "line__product")
    )
    for chunk in _batches(due_offers, batch_size):
        with transaction.atomic():
            for backorder in chunk:
                line = backorder.line
                waited = (today - backorder.placed_at.date()).days
                if notify(
                    kind=Kind.CANCELLATION_OFFER,
                    line=line,
                    order=line.order,
                    key=f"cancellation_offer:{line.pk}",
                    days_waiting=waited,
                    substitutes=_substitutes(line),
                    coupon_code=policy.coupon_code,
                    no_eta=backorder.eta is None,
                ):
                    result.cancellation_offers += 1

    every = policy.status_update_days
    if not every:
        return
    updates = Backorder.objects.filter(
        status=Backorder.Status.WAITING, placed_at__date__lte=today - timedelta(days=every)
    ).select_related("line__order__customer", "line__product")
    for chunk in _batches(updates, batch_size):
        keys = {b.pk: f"status_update:{b.line_id}:{(today - b.placed_at.date()).days // every}" for b in chunk}
        sent = set(Notification.objects.filter(dedupe_key__in=keys.values()).values_list("dedupe_key", flat=True))
        with transaction.atomic():
            for backorder in chunk:
                if keys[backorder.pk] in sent:
                    continue
                line = backorder.line
                if notify(
                    kind=Kind.STATUS_UPDATE,
                    line=line,
                    order=line.order,
                    key=keys[backorder.pk],
                    days_waiting=(today - backorder.placed_at.date()).days,
                ):
                    result.status_updates += 1


@transaction.atomic
def clock_record_express_consent(
    *, line: OrderLine, channel: str, ip: str | None = None, on: date | None = None
) -> bool:
    """The customer chose to keep waiting: express consent to the latest notice's date (or to an
    indefinite delay when that date is unknown). Recorded with time, channel and IP. False if the line
    has nothing waiting or its clock is closed."""
    today = on or timezone.localdate()
    line = OrderLine.objects.select_related("order", "product").get(pk=line.pk)
    if not line.backordered:
        return False
    clock = clock_start(line=line, profile=compliance_profile(BackorderPolicy.current()), today=today)
    if clock.state != ComplianceClock.State.OPEN:
        return False
    ComplianceClock.objects.filter(pk=clock.pk).update(
        consent=Consent.EXPRESS,
        consent_deadline=None,
        indefinite_consent=clock.notices_sent > 0 and clock.revised_date is None,
    )
    record_event(
        line=line,
        kind=Event.CONSENT_EXPRESS,
        on=today,
        channel=channel,
        ip=ip,
        key=f"consent_express:{line.pk}:{clock.notices_sent}",
        to_date=clock.revised_date,
    )
    return True


@transaction.atomic
def customer_cancel_backordered(
    *, order: SalesOrder, channel: str, ip: str | None = None, on: date | None = None
) -> dict[str, int]:
    """The customer cancels every waiting unit of the order (status page or support): the units are
    cancelled, their clocks closed with a refund due date, and one cancellation_confirmed is sent per line.
    Returns {sku: units cancelled}. Allocated units are left to ship."""
    today = on or timezone.localdate()
    policy = BackorderPolicy.current()
    profile = compliance_profile(policy)
    cancelled: dict[str, int] = {}
    for line in order.lines.select_related("product", "order__customer").filter(backordered__gt=0).order_by("pk"):
        clock = clock_start(line=line, profile=profile, today=today)
        clock.line = line
        units = _cancel_waiting(
            clock=clock,
            profile=compliance_profile(policy, clock.profile),
            today=today,
            kind=Event.CANCELLED_BY_CUSTOMER,
            reason="cancelled by the customer",
            channel=channel,
            ip=ip,
        )
        cancelled[line.product.sku] = units
    return cancelled
