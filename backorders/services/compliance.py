"""The compliance clock: the daily scan that decides every due notice and deadline, and the records
of what customers chose. Rules per profile live in backorders.compliance; this module writes.

Everything the scan decides is keyed: a ComplianceEvent and a Notification per decision, each with a
unique dedupe key, so a second run for the same day records and sends nothing new.
"""

import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta

from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import CharField, Exists, Func, IntegerField, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat, TruncDate
from django.utils import timezone

from inventory.dbutils import insert_unless_conflict  # importing it also registers the any_of lookup
from inventory.models import Product
from inventory.selectors import products_with_stock, stock_levels_lock
from notifications.models import Notification
from notifications.services import (
    DeferredRow,
    NotificationSpec,
    notification_create,
    notification_create_deferred,
    notification_create_deferred_from,
)
from orders.models import Customer, OrderLine, SalesOrder, ShipmentLine
from orders.selectors import order_lines_lock

from ..compliance import ComplianceProfile, Decision, clocks_due_filter, compliance_profile
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


def notice_spec(
    *,
    kind: str,
    line: OrderLine | None,
    order: SalesOrder,
    key: str,
    lines: list[OrderLine] | None = None,
    scheduled_for=None,
    **context: object,
) -> NotificationSpec:
    """A customer notification for an order (and line) with the standard context, for notification_create_many."""
    lines = (
        lines if lines is not None else ([line] if line is not None else list(order.lines.select_related("product")))
    )
    return NotificationSpec(
        kind=kind,
        customer=order.customer,
        order=order,
        line=line,
        dedupe_key=key,
        scheduled_for=scheduled_for,
        context={"status_url": status_url(order), "lines": [line_context(x) for x in lines], **context},
    )


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
    spec = notice_spec(kind=kind, line=line, order=order, key=key, lines=lines, scheduled_for=scheduled_for, **context)
    return notification_create(
        kind=spec.kind,
        customer=spec.customer,
        order=spec.order,
        line=spec.line,
        dedupe_key=spec.dedupe_key,
        scheduled_for=spec.scheduled_for,
        context=spec.context,
    )


def _is_exempt(line: OrderLine, profile: ComplianceProfile) -> bool:
    return profile.code == "us_ftc" and (line.order.cash_on_delivery or line.product.ftc_exempt)


def clock_start(*, line: OrderLine, profile: ComplianceProfile, today: date) -> ComplianceClock:
    """The line's clock, started if it has none (T from the order; exempt lines are recorded as such)."""
    order = line.order
    exempt = _is_exempt(line, profile)
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
            coupon_code=profile.policy.coupon_code,
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


def _substitutes_for(product_ids: Iterable[int]) -> dict[int, list[dict[str, str]]]:
    """`_substitutes` for many products in one query: {product id: up to 5 in-stock substitutes, by SKU}."""
    found: dict[int, list[dict[str, str]]] = defaultdict(list)
    rows = (
        products_with_stock(Product.objects.filter(substitute_for__in=set(product_ids)))
        .filter(total_available__gt=0)
        .annotate(substitute_for_id=models.F("substitute_for__id"))
        .order_by("substitute_for_id", "sku")
        .values_list("substitute_for_id", "sku", "name")
    )
    for product_id, sku, name in rows:
        if len(found[product_id]) < 5:
            found[product_id].append({"sku": sku, "name": name})
    return found


@contextmanager
def _pk_batches(qs: QuerySet, batch_size: int) -> Iterator[Iterator[list[int]]]:
    """The pks `qs` selects, in pk order, `batch_size` at a time, from one pass of the database.

    On PostgreSQL the selection runs once, as `CREATE TEMPORARY TABLE … AS`: planned for the whole result
    (hash joins, one pass over each table, parallel workers where the server has them; a cursor over the
    selection itself would get neither), its ids wait on the server, and a WITH HOLD cursor over them brings
    one batch per FETCH, so memory here stays flat. Writes between fetches commit in their own transactions.
    Elsewhere: keyset pages (pk > last).
    """
    ids = qs.order_by().values_list("pk", flat=True)
    if connection.vendor != "postgresql":
        yield _keyset_pages(ids, batch_size)
        return
    sql, params = ids.query.sql_with_params()
    name = f"scan_{uuid.uuid4().hex}"
    with connection.cursor() as cursor:
        with transaction.atomic():
            cursor.execute(f"CREATE TEMPORARY TABLE {name}_ids AS {sql}", params)
            cursor.execute(f"DECLARE {name} NO SCROLL CURSOR WITH HOLD FOR SELECT * FROM {name}_ids ORDER BY 1")
        try:
            yield _fetch_pages(cursor, name, batch_size)
        finally:
            # If the transaction they were made in failed, the cursor and the table went with it.
            with contextlib.suppress(DatabaseError), transaction.atomic():
                cursor.execute(f"CLOSE {name}")
                cursor.execute(f"DROP TABLE {name}_ids")


def _fetch_pages(cursor, name: str, batch_size: int) -> Iterator[list[int]]:
    while True:
        cursor.execute(f"FETCH FORWARD {int(batch_size)} FROM {name}")
        rows = cursor.fetchall()
        if not rows:
            return
        yield [row[0] for row in rows]


def _keyset_pages(ids: QuerySet, batch_size: int) -> Iterator[list[int]]:
    last = None
    while True:
        page = ids if last is None else ids.filter(pk__gt=last)
        chunk = list(page.order_by("pk")[:batch_size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1]


def _details(**details: object) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in details.items()}


@transaction.atomic
def clocks_start(*, line_ids: list[int], profile: ComplianceProfile, today: date) -> int:
    """clock_start for many lines in a constant number of queries. Lines that have a clock already (or no longer
    wait) are left alone; a concurrent clock_start for the same line wins quietly and is not counted or recorded
    twice here. Returns how many clocks were started.

    On PostgreSQL one statement: INSERT … SELECT the clocks from the lines, their orders and products (ship_by
    and the exemption from the profile's clock_start_sql), ON CONFLICT (line) DO NOTHING, and the 'clock
    started' events from its RETURNING. Elsewhere: one read of the lines, an insert per clock, one of events."""
    if not line_ids:
        return 0
    if connection.vendor == "postgresql":
        return _clocks_start_sql(line_ids=line_ids, profile=profile, today=today)
    lines = (
        OrderLine.objects.filter(pk__any_of=line_ids, backordered__gt=0, compliance__isnull=True)
        .select_related("order", "product")
        .order_by("pk")
    )
    clocks = [
        ComplianceClock(
            line_id=line.pk,
            profile=profile.code,
            ship_by=profile.ship_by(line.order),
            state=ComplianceClock.State.EXEMPT if _is_exempt(line, profile) else ComplianceClock.State.OPEN,
        )
        for line in lines
    ]
    started = [clock for clock in clocks if insert_unless_conflict(clock, conflict_fields=["line"])]
    ComplianceEvent.objects.bulk_create(
        [
            ComplianceEvent(
                line_id=clock.line_id,
                kind=Event.CLOCK_STARTED,
                on=today,
                channel=ComplianceEvent.Channel.SYSTEM,
                dedupe_key=f"clock:{clock.line_id}",
                details=_details(
                    ship_by=clock.ship_by, profile=profile.code, exempt=clock.state == ComplianceClock.State.EXEMPT
                ),
            )
            for clock in started
        ],
        ignore_conflicts=True,
    )
    return len(started)


def _clocks_start_sql(*, line_ids: list[int], profile: ComplianceProfile, today: date) -> int:
    ship_by, exempt = profile.clock_start_sql(order="o", product="p")
    sql = f"""
        WITH started AS (
            INSERT INTO {ComplianceClock._meta.db_table} (profile, state, ship_by, revised_date, notices_sent,
                last_notice_on, consent, consent_deadline, indefinite_consent, cancelled_on, refund_due_by,
                refund_units, created_at, updated_at, line_id)
            SELECT %(profile)s, CASE WHEN {exempt} THEN %(exempt)s ELSE %(open)s END, {ship_by}, NULL, 0, NULL,
                   %(consent)s, NULL, false, NULL, NULL, 0, %(now)s, %(now)s, l.id
            FROM {OrderLine._meta.db_table} l
            JOIN {SalesOrder._meta.db_table} o ON o.id = l.order_id
            JOIN {Product._meta.db_table} p ON p.id = l.product_id
            WHERE l.id = ANY(%(ids)s::bigint[]) AND l.backordered > 0
            ORDER BY l.id
            ON CONFLICT (line_id) DO NOTHING
            RETURNING line_id, state, ship_by
        ), recorded AS (
            INSERT INTO {ComplianceEvent._meta.db_table} (kind, "on", channel, ip_address, details, dedupe_key,
                created_at, line_id)
            SELECT %(kind)s, %(today)s, %(channel)s, NULL,
                   jsonb_build_object('ship_by', to_char(ship_by, 'YYYY-MM-DD'), 'profile', %(profile)s::text,
                                      'exempt', state = %(exempt)s),
                   'clock:' || line_id, %(now)s, line_id
            FROM started ORDER BY line_id
            ON CONFLICT (dedupe_key) DO NOTHING
        )
        SELECT count(*) FROM started
    """
    params = {
        "ids": list(line_ids),
        "profile": profile.code,
        "exempt": ComplianceClock.State.EXEMPT,
        "open": ComplianceClock.State.OPEN,
        "consent": Consent.NONE,
        "kind": Event.CLOCK_STARTED,
        "channel": ComplianceEvent.Channel.SYSTEM,
        "today": today,
        "now": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        [(started,)] = cursor.fetchall()
    return started


def backorders_scan(
    *, as_of: date | None = None, batch_size: int = 500, progress: Callable[[str], None] | None = None
) -> ScanResult:
    """Decide every due notice and deadline for all open lines as of `as_of` (default today).

    1. Start a clock for every waiting line that has none (T from the order and the profile), a batch at a time.
    2. Close clocks whose line has nothing left to ship.
    3. For each open clock with units waiting for which something may be due (the profiles' due_filter, one
       pass in the database), ask the profile what is due and do it: a delay notice, a renewed notice, a
       deemed cancellation (with refund due date), or the end of an additional period.
    4. Cancellation offers (waited >= policy days, or no ETA) and periodic status updates, selected in the
       database (no such notification yet) and written a batch at a time.
    Idempotent: decisions are keyed, so a second run for the same day changes nothing. Each selection is one
    pass; the rows it yields are handled in bounded batches, one transaction each, at a constant number of
    queries per batch (but for the due clocks, which write per clock).
    """
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    profile = compliance_profile(policy)
    result = ScanResult()
    say = progress or (lambda _msg: None)

    unclocked = OrderLine.objects.filter(backordered__gt=0, compliance__isnull=True)
    with _pk_batches(unclocked, batch_size) as batches:
        for line_ids in batches:
            result.clocks_started += clocks_start(line_ids=line_ids, profile=profile, today=today)
            say(f"clocks started: {result.clocks_started}")

    _record_shipments(today=today, batch_size=batch_size)
    result.clocks_closed = ComplianceClock.objects.filter(
        state=ComplianceClock.State.OPEN, line__backordered=0, line__allocated=0
    ).update(state=ComplianceClock.State.SHIPPED)

    open_clocks = ComplianceClock.objects.filter(state=ComplianceClock.State.OPEN, line__backordered__gt=0)
    due = open_clocks.filter(clocks_due_filter(policy, today))
    profiles: dict[str, ComplianceProfile] = {}
    seen = 0
    with _pk_batches(due, batch_size) as batches:
        for clock_ids in batches:
            chunk = open_clocks.filter(pk__any_of=clock_ids).select_related(
                "line__order__customer", "line__product", "line__backorder"
            )
            for clock in chunk.order_by("pk"):
                if clock.profile not in profiles:
                    profiles[clock.profile] = compliance_profile(policy, clock.profile)
                backorder = getattr(clock.line, "backorder", None)
                eta = backorder.eta if backorder is not None else None
                decision = profiles[clock.profile].decide(clock, eta=eta, today=today)
                if decision.action != "none":
                    with transaction.atomic():
                        _apply(decision, clock, profiles[clock.profile], today, result)
            seen += len(clock_ids)
            say(f"clocks checked: {seen}")
    say(f"clocks with something due checked: {seen}")

    _offers_and_updates(policy=policy, today=today, batch_size=batch_size, result=result, say=say)
    say(str(result))
    return result


def _record_shipments(*, today: date, batch_size: int) -> None:
    """Put every shipment of a clocked line on its timeline (once each), dated the day it was handed over."""
    recorded = ComplianceEvent.objects.filter(dedupe_key=Concat(Value("shipped:"), Cast(OuterRef("pk"), CharField())))
    shipments = ShipmentLine.objects.filter(
        line__compliance__isnull=False, shipment__shipped_at__date__lte=today
    ).exclude(Exists(recorded))
    with _pk_batches(shipments, batch_size) as batches:
        for shipment_ids in batches:
            chunk = ShipmentLine.objects.filter(pk__any_of=shipment_ids).select_related("shipment").order_by("pk")
            ComplianceEvent.objects.bulk_create(
                [
                    ComplianceEvent(
                        line_id=shipped.line_id,
                        kind=Event.SHIPPED,
                        on=timezone.localdate(shipped.shipment.shipped_at),
                        channel=ComplianceEvent.Channel.SYSTEM,
                        dedupe_key=f"shipped:{shipped.pk}",
                        details=_details(units=shipped.quantity, shipment=shipped.shipment_id),
                    )
                    for shipped in chunk
                ],
                ignore_conflicts=True,
            )


class _DaysSince(Func):
    """(day - date_expression) in whole days, as an integer."""

    output_field = IntegerField()

    def __init__(self, day: date, expression, **extra) -> None:
        super().__init__(Value(day), expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler, connection, template="(%(expressions)s)", arg_joiner="::date - ", **extra_context
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) AS integer)",
            arg_joiner=") - julianday(",
            **extra_context,
        )


def _deferred_rows(
    backorder_ids: Sequence[int],
    *,
    key: Callable[[int, int], str],
    data: Callable[[int, date | None], dict[str, object]],
    today: date,
) -> list[DeferredRow]:
    """The outbox rows of an offer or update batch from one read of plain values: `key(line_id, days waited)`,
    `data(days waited, eta)`. The rest of each email is built when it is rendered (the builders below)."""
    rows = (
        Backorder.objects.filter(pk__any_of=backorder_ids, status=Backorder.Status.WAITING)
        .order_by("pk")
        .values_list(
            "line_id", "line__order_id", "line__order__customer_id", "line__order__customer__email", "placed_at",
            "eta",
        )
    )  # fmt: skip
    return [
        DeferredRow(
            customer_id=customer_id,
            to_email=email,
            order_id=order_id,
            line_id=line_id,
            dedupe_key=key(line_id, (today - placed_at.date()).days),
            data=data((today - placed_at.date()).days, eta),
        )
        for line_id, order_id, customer_id, email, placed_at, eta in rows
    ]


def _lines_for(notifications: Sequence[Notification]) -> dict[int, OrderLine]:
    return OrderLine.objects.select_related("product", "backorder").in_bulk([n.line_id for n in notifications])


def status_update_contexts(notifications: Sequence[Notification]) -> dict[int, dict[str, object]]:
    """Template context of status_update emails, built when they are rendered (notifications.services)."""
    lines = _lines_for(notifications)
    return {
        n.pk: {
            "status_url": status_url(n.order),
            "lines": [line_context(lines[n.line_id])],
            "days_waiting": n.data["days_waiting"],
        }
        for n in notifications
    }


def cancellation_offer_contexts(notifications: Sequence[Notification]) -> dict[int, dict[str, object]]:
    """Template context of cancellation_offer emails, built when they are rendered: substitutes in stock and
    the coupon as they are then."""
    lines = _lines_for(notifications)
    substitutes = _substitutes_for(line.product_id for line in lines.values())
    coupon_code = BackorderPolicy.current().coupon_code
    return {
        n.pk: {
            "status_url": status_url(n.order),
            "lines": [line_context(lines[n.line_id])],
            "days_waiting": n.data["days_waiting"],
            "substitutes": substitutes.get(lines[n.line_id].product_id, []),
            "coupon_code": coupon_code,
            "no_eta": n.data["no_eta"],
        }
        for n in notifications
    }


def _start_of(day: date) -> datetime:
    """The first instant of `day` in the current time zone: `placed_at < _start_of(day + 1)` is
    `placed_at__date <= day`, in a form the (status, placed_at) index serves."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _offers_and_updates(
    *, policy: BackorderPolicy, today: date, batch_size: int, result: ScanResult, say: Callable[[str], None]
) -> None:
    """Cancellation offers and periodic status updates: the due lines are selected in the database (no such
    notification yet: NOT EXISTS), then written unrendered a batch at a time (_write_due)."""
    waiting = Backorder.objects.filter(status=Backorder.Status.WAITING)

    offered = Notification.objects.filter(line=OuterRef("line"), kind=Kind.CANCELLATION_OFFER)
    cutoff = today - timedelta(days=policy.cancellation_offer_days)
    due_offers = (
        waiting.filter(placed_at__lt=_start_of(today + timedelta(days=1)))
        .filter(Q(placed_at__lt=_start_of(cutoff + timedelta(days=1))) | Q(eta__isnull=True))
        .exclude(Exists(offered))
    )
    result.cancellation_offers += _write_due(
        due_offers,
        kind=Kind.CANCELLATION_OFFER,
        key=lambda line_id, days: f"cancellation_offer:{line_id}",
        data=lambda days, eta: {"days_waiting": days, "no_eta": eta is None},
        key_sql="'cancellation_offer:' || b.line_id",
        data_sql="jsonb_build_object('days_waiting', w.days, 'no_eta', b.eta IS NULL)",
        today=today,
        batch_size=batch_size,
        say=say,
    )

    every = policy.status_update_days
    if not every:
        return
    # The key of the update due now: its number is whole periods waited (from the UTC date it was placed,
    # as Python's placed_at.date() reads it); an update of that number exists once it was sent.
    key = Concat(
        Value("status_update:"),
        Cast("line_id", CharField()),
        Value(":"),
        Cast(_DaysSince(today, TruncDate("placed_at", tzinfo=UTC)) / Value(every), CharField()),
        output_field=CharField(),
    )
    sent = Notification.objects.filter(dedupe_key=OuterRef("update_key"))
    due_updates = (
        waiting.filter(placed_at__lt=_start_of(today - timedelta(days=every - 1)))
        .annotate(update_key=key)
        .exclude(Exists(sent))
    )
    result.status_updates += _write_due(
        due_updates,
        kind=Kind.STATUS_UPDATE,
        key=lambda line_id, days: f"status_update:{line_id}:{days // every}",
        data=lambda days, eta: {"days_waiting": days},
        key_sql=f"'status_update:' || b.line_id || ':' || (w.days / {int(every)})",
        data_sql="jsonb_build_object('days_waiting', w.days)",
        today=today,
        batch_size=batch_size,
        say=say,
    )


def _write_due(
    due: QuerySet,
    *,
    kind: str,
    key: Callable[[int, int], str],
    data: Callable[[int, date | None], dict[str, object]],
    key_sql: str,
    data_sql: str,
    today: date,
    batch_size: int,
    say: Callable[[str], None],
) -> int:
    """One unrendered email of `kind` per backorder in `due` that still waits, a batch (and transaction) at a
    time; how many. `key(line_id, days waited)` and `data(days waited, eta)` build each row's dedupe key and
    facts; on PostgreSQL their SQL twins `key_sql` and `data_sql` (over the backorder `b` and `w.days`, the days
    waited since the UTC date it was placed, as Python's placed_at.date() reads it) do, in one INSERT … SELECT
    per batch that no row travels through Python for."""
    written = 0
    rows_sql = f"""
        SELECT o.customer_id, cu.email, l.order_id, b.line_id, {key_sql}, {data_sql}
        FROM {Backorder._meta.db_table} b
        CROSS JOIN LATERAL (SELECT %(today)s::date - (b.placed_at AT TIME ZONE 'UTC')::date AS days) w
        JOIN {OrderLine._meta.db_table} l ON l.id = b.line_id
        JOIN {SalesOrder._meta.db_table} o ON o.id = l.order_id
        JOIN {Customer._meta.db_table} cu ON cu.id = o.customer_id
        WHERE b.id = ANY(%(ids)s::bigint[]) AND b.status = %(waiting)s
        ORDER BY b.id
    """
    with _pk_batches(due, batch_size) as batches:
        for backorder_ids in batches:
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    written += notification_create_deferred_from(
                        kind=kind,
                        rows_sql=rows_sql,
                        params={"ids": backorder_ids, "today": today, "waiting": Backorder.Status.WAITING},
                    )
                else:
                    rows = _deferred_rows(backorder_ids, key=key, data=data, today=today)
                    written += notification_create_deferred(kind=kind, rows=rows)
            say(f"{Notification.Kind(kind).label.lower()}s: {written}")
    return written


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
