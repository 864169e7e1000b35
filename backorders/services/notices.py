"""Decides which customer emails a queue change causes: backorder created, filled, ETA changed.

(The compliance notices, cancellation offers and status updates are decided by the daily scan in
backorders.services.compliance.) Each email is written to the outbox in the caller's transaction.
"""

from collections.abc import Iterable
from datetime import date, timedelta

from django.utils import timezone

from notifications.models import Notification
from notifications.services import (
    NotificationSpec,
    notification_create_many,
    notification_rerender,
    notification_suppress,
)
from orders.models import SalesOrder

from ..models import Backorder, BackorderPolicy, ComplianceClock, EtaChange
from ..status_links import status_url

Kind = Notification.Kind


def _line_row(backorder: Backorder) -> dict[str, object]:
    line = backorder.line
    return {
        "sku": backorder.product.sku,
        "name": backorder.product.name,
        "quantity": line.quantity,
        "backordered": line.backordered,
        "eta": backorder.eta,
    }


def notify_backorder_created(*, order: SalesOrder) -> None:
    """One email per order that waits for something: what is backordered, until when, what happens next."""
    waiting = list(
        Backorder.objects.filter(line__order=order, status=Backorder.Status.WAITING).select_related(
            "line__product", "product"
        )
    )
    if not waiting:
        return
    notification_create_many(
        [
            NotificationSpec(
                kind=Kind.BACKORDER_CREATED,
                customer=order.customer,
                order=order,
                dedupe_key=f"backorder_created:{order.pk}",
                context={"status_url": status_url(order), "lines": [_line_row(b) for b in waiting]},
            )
        ]
    )


def notify_filled(*, backorder_ids: Iterable[int]) -> None:
    """Good news, one email per filled line: it is allocated and will ship."""
    filled = list(
        Backorder.objects.filter(pk__in=list(backorder_ids)).select_related(
            "line__order__customer", "line__product", "product"
        )
    )
    notification_create_many(
        [
            NotificationSpec(
                kind=Kind.BACKORDER_FILLED,
                customer=b.line.order.customer,
                order=b.line.order,
                line=b.line,
                dedupe_key=f"backorder_filled:{b.pk}",
                context={"status_url": status_url(b.line.order), "lines": [_line_row(b)]},
            )
            for b in filled
        ]
    )


def _promised(backorder: Backorder) -> date | None:
    clock: ComplianceClock | None = getattr(backorder.line, "compliance", None)
    if clock is not None:
        return clock.revised_date or clock.ship_by
    return backorder.line.order.ship_by


def notify_eta_changes(*, changes: Iterable[EtaChange], now=None) -> None:
    """Tell customers when an ETA moved by at least the policy threshold, or past the promised date.

    Sent after a quiet period: a change that is changed again within it re-renders the same pending
    email (keeping the first previous date); one that returns to the previous date is suppressed, so a
    corrected typo sends nothing. At most one a day per line (the dedupe key has the date).
    """
    now = now or timezone.now()
    latest: dict[int, EtaChange] = {}
    for change in changes:  # the first date ever set (old None) is no change, unless an email is pending
        latest[change.backorder_id] = change
    if not latest:
        return
    policy = BackorderPolicy.current()
    quiet_until = now + timedelta(minutes=policy.eta_quiet_minutes)
    today = timezone.localdate(now)
    backorders = Backorder.objects.filter(pk__in=list(latest), status=Backorder.Status.WAITING).select_related(
        "line__order__customer", "line__compliance", "product"
    )
    keys = {b.pk: f"eta_changed:{b.line_id}:{today.isoformat()}" for b in backorders}
    existing = {n.dedupe_key: n for n in Notification.objects.filter(dedupe_key__in=keys.values())}
    new_specs = []
    for backorder in backorders:
        change = latest[backorder.pk]
        pending = existing.get(keys[backorder.pk])
        if pending is not None and pending.status not in (Notification.Status.PENDING, Notification.Status.SUPPRESSED):
            continue  # one a day per line: today's was already sent
        previous = date.fromisoformat(pending.data["previous_eta"]) if pending else change.old_eta
        if previous is None:
            continue
        new = backorder.eta
        promised = _promised(backorder)
        significant = (
            new is None
            or abs((new - previous).days) >= policy.eta_change_threshold_days
            or (promised is not None and new > promised >= previous)
        )
        context = {
            "status_url": status_url(backorder.line.order),
            "lines": [_line_row(backorder)],
            "previous_eta": previous,
            "new_eta": new,
            "reason": change.reason,
        }
        data = {"previous_eta": previous.isoformat()}
        if pending is not None:
            if significant:
                notification_rerender(notification=pending, context=context, scheduled_for=quiet_until, data=data)
            else:
                notification_suppress(notification=pending, reason="ETA moved back within the quiet period")
        elif significant:
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
