"""Decides which customer emails a queue change causes: backorder created, filled, ETA changed.

(The compliance notices, cancellation offers and status updates are decided by the daily scan in
backorders.services.compliance.) Each email is written to the outbox in the caller's transaction.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from django.utils import timezone

from inventory.dbutils import Statement
from notifications.models import Notification, WebhookEndpoint
from notifications.services import (
    DeferredRow,
    NotificationSpec,
    notification_create_deferred,
    notification_create_deferred_statement,
    notification_create_many,
    notification_rerender,
    notification_suppress,
)
from notifications.webhooks import webhook_endpoints_for
from orders.models import SalesOrder

from ..models import Backorder, BackorderPolicy, EtaChange
from ..status_links import status_url
from .events import backorders_emit

Kind = Notification.Kind
Event = WebhookEndpoint.Event


def _created_key(order_id: int) -> str:
    return f"backorder_created:{order_id}"


def _line_row(backorder: Backorder) -> dict[str, object]:
    line = backorder.line
    return {
        "sku": backorder.product.sku,
        "name": backorder.product.name,
        "quantity": line.quantity,
        "backordered": line.backordered,
        "eta": backorder.eta,
    }


def backorder_created_email(*, order: SalesOrder) -> None:
    """The backorder_created email of an order that waits for something, written unrendered (one statement,
    nothing rendered while the order's transaction is open). The sender renders it from the order's backorders
    (created_contexts below), so a placement writes it before the lines have their ETAs (their backorder.created
    events are emitted once they have them)."""
    notification_create_deferred(
        kind=Kind.BACKORDER_CREATED,
        rows=[
            DeferredRow(
                customer_id=order.customer_id,
                to_email=order.customer.email,
                order_id=order.pk,
                line_id=None,
                dedupe_key=_created_key(order.pk),
            )
        ],
    )


def created_contexts(notifications: Sequence[Notification]) -> dict[int, dict[str, object]]:
    """Template context of backorder_created emails, built when rendered: every line of the order that went on
    backorder (also one filled meanwhile, so the email still says what was backordered), as it is then."""
    by_order: dict[int, list[Backorder]] = {}
    for backorder in (
        Backorder.objects.filter(line__order_id__in=[n.order_id for n in notifications])
        .select_related("line", "product")
        .order_by("pk")
    ):
        by_order.setdefault(backorder.line.order_id, []).append(backorder)
    return {
        n.pk: {"status_url": status_url(n.order), "lines": [_line_row(b) for b in by_order.get(n.order_id, [])]}
        for n in notifications
    }


class FilledRecipient(NamedTuple):
    """Who a filled line's email goes to, when the caller already read it (a fill's head read does)."""

    customer_id: int
    email: str
    order_id: int
    line_id: int


def notify_filled_events(*, backorder_ids: Iterable[int]) -> None:
    """A backorder.filled event per filled line: call after the fill is written (an event shows the backorder as it
    is then)."""
    backorders_emit(event_type=Event.BACKORDER_FILLED, backorder_ids=backorder_ids)


def notify_filled_statement(
    *, backorder_ids: Iterable[int], recipients: Mapping[int, FilledRecipient] | None = None
) -> Statement | None:
    """Good news, one email per filled line: it is allocated and will ship. A fill can serve 100,000 lines at once,
    so the emails are stored unrendered by one INSERT, returned not yet run (None when nothing was filled) for the
    fill to run with its own writes (dbutils.run_together), and rendered in bulk by the worker that sends them
    (filled_contexts below). Recipients are read (plain values, one query) unless the caller passes those of every
    line. The fill then calls notify_filled_events."""
    backorder_ids = list(backorder_ids)
    if not backorder_ids:
        return None
    if recipients is not None and all(pk in recipients for pk in backorder_ids):
        rows = [(pk, *recipients[pk]) for pk in sorted(backorder_ids)]
    else:
        rows = list(
            Backorder.objects.filter(pk__any_of=backorder_ids)
            .order_by("pk")
            .values_list("pk", "line__order__customer_id", "line__order__customer__email", "line__order_id", "line_id")
        )
    return notification_create_deferred_statement(
        kind=Kind.BACKORDER_FILLED,
        rows=[
            DeferredRow(
                customer_id=customer_id,
                to_email=email,
                order_id=order_id,
                line_id=line_id,
                dedupe_key=f"backorder_filled:{pk}",
            )
            for pk, customer_id, email, order_id, line_id in rows
        ],
    )


def filled_contexts(notifications: Sequence[Notification]) -> dict[int, dict[str, object]]:
    """Template context of backorder_filled emails rendered later: the line as it is when rendered. One query."""
    backorders = {
        b.line_id: b
        for b in Backorder.objects.filter(line_id__in=[n.line_id for n in notifications]).select_related(
            "line", "product"
        )
    }
    return {
        n.pk: {"status_url": status_url(n.order), "lines": [_line_row(backorders[n.line_id])]} for n in notifications
    }


def _emit_eta_changed(changes: list[EtaChange]) -> None:
    """One backorder.eta_changed event per backorder whose ETA changed (from its first previous value in
    `changes` to what it is now), except the first ETA computed while its order is being placed: that one is
    part of backorder.created. (The order's backorder_created email is written after the ETAs, so an order
    without one yet is being placed in this transaction.)"""
    if not changes:
        return
    endpoints = webhook_endpoints_for(Event.BACKORDER_ETA_CHANGED)
    if not endpoints:
        return
    first: dict[int, EtaChange] = {}
    last: dict[int, EtaChange] = {}
    for change in changes:
        first.setdefault(change.backorder_id, change)
        last[change.backorder_id] = change
    initial = [pk for pk, change in first.items() if change.old_eta is None and not change.old_source]
    if initial:
        order_of = dict(Backorder.objects.filter(pk__in=initial).values_list("pk", "line__order_id"))
        placed = set(
            Notification.objects.filter(
                dedupe_key__in=[_created_key(order_id) for order_id in set(order_of.values())]
            ).values_list("order_id", flat=True)
        )
        for pk in initial:
            if order_of.get(pk) not in placed:
                del first[pk]
    backorders_emit(
        event_type=Event.BACKORDER_ETA_CHANGED,
        backorder_ids=list(first),
        endpoints=endpoints,
        extra={
            pk: {"previous_eta": change.old_eta, "previous_eta_source": change.old_source, "reason": last[pk].reason}
            for pk, change in first.items()
        },
    )


def notify_eta_changes(*, changes: Iterable[EtaChange], now=None) -> None:
    """Tell customers when an ETA moved by at least the policy threshold, or past the promised date.

    Sent after a quiet period: a change that is changed again within it re-renders the same pending
    email (keeping the first previous date); one that returns to the previous date is suppressed, so a
    corrected typo sends nothing. At most one a day per line (the dedupe key has the date).
    """
    now = now or timezone.now()
    changes = list(changes)
    _emit_eta_changed(changes)
    latest: dict[int, EtaChange] = {}
    for change in changes:  # the first date ever set (old None) is no change, unless an email is pending
        latest[change.backorder_id] = change
    if not latest:
        return
    policy = BackorderPolicy.current()
    quiet_until = now + timedelta(minutes=policy.eta_quiet_minutes)
    today = timezone.localdate(now)
    # Decide from plain values first (a nightly re-peg changes every lead-time ETA by a day: most changes are
    # below the threshold and need nothing); model instances only for the lines that get or change an email.
    facts = (
        Backorder.objects.filter(pk__any_of=list(latest), status=Backorder.Status.WAITING)
        .order_by("pk")
        .values_list(
            "pk", "line_id", "eta", "line__compliance__id", "line__compliance__revised_date",
            "line__compliance__ship_by", "line__order__ship_by",
        )
    )  # fmt: skip
    keys: dict[int, str] = {}
    decided: dict[int, tuple[date | None, date | None]] = {}  # backorder -> (its ETA now, the date promised)
    for pk, line_id, new, clock_id, revised, clock_ship_by, order_ship_by in facts:
        keys[pk] = f"eta_changed:{line_id}:{today.isoformat()}"
        promised = (revised or clock_ship_by) if clock_id is not None else order_ship_by
        decided[pk] = (new, promised)
    existing = {n.dedupe_key: n for n in Notification.objects.filter(dedupe_key__any_of=list(keys.values()))}
    wanted: dict[int, tuple[date, bool, Notification | None]] = {}
    for pk, (new, promised) in decided.items():
        change = latest[pk]
        pending = existing.get(keys[pk])
        if pending is not None and pending.status not in (Notification.Status.PENDING, Notification.Status.SUPPRESSED):
            continue  # one a day per line: today's was already sent
        previous = date.fromisoformat(pending.data["previous_eta"]) if pending else change.old_eta
        if previous is None:
            continue
        significant = (
            new is None
            or abs((new - previous).days) >= policy.eta_change_threshold_days
            or (promised is not None and new > promised >= previous)
        )
        if significant or pending is not None:
            wanted[pk] = (previous, significant, pending)
    if not wanted:
        return
    backorders = Backorder.objects.filter(pk__any_of=list(wanted)).select_related("line__order__customer", "product")
    new_specs = []
    for backorder in backorders:
        change = latest[backorder.pk]
        previous, significant, pending = wanted[backorder.pk]
        context = {
            "status_url": status_url(backorder.line.order),
            "lines": [_line_row(backorder)],
            "previous_eta": previous,
            "new_eta": backorder.eta,
            "reason": change.reason,
        }
        data = {"previous_eta": previous.isoformat()}
        if pending is not None:
            if significant:
                notification_rerender(notification=pending, context=context, scheduled_for=quiet_until, data=data)
            else:
                notification_suppress(notification=pending, reason="ETA moved back within the quiet period")
        else:
            new_specs.append(
                NotificationSpec(
                    kind=Kind.ETA_CHANGED,
                    customer=backorder.line.order.customer,
                    order=backorder.line.order,
                    line=backorder.line,
                    dedupe_key=keys[backorder.pk],
                    context=context,
                    scheduled_for=quiet_until,
                    data=data,
                )
            )
    notification_create_many(new_specs)
