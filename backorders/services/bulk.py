"""Customer emails customer service sends on demand (admin bulk actions): a status update now, a
cancellation offer now. The same notices, context and dedupe conventions as the daily scan
(backorders.services.compliance.notice_spec), so the scan never sends a second offer after one sent here.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from notifications.models import Notification
from notifications.services import NotificationSpec, notification_create_many

from ..models import Backorder, BackorderPolicy
from .compliance import _substitutes_for, notice_spec

Kind = Notification.Kind


@dataclass
class BulkNoticeResult:
    queued: int = 0  # emails written to the outbox now
    already: int = 0  # an identical email exists already (today's update, the line's offer)
    not_waiting: int = 0  # the line no longer waits: nothing to tell


def _waiting_lines(backorders: Iterable[Backorder]) -> tuple[list[Backorder], int]:
    ids = sorted({b.pk for b in backorders})
    rows = list(
        Backorder.objects.filter(pk__in=ids)
        .select_related("line__order__customer", "line__product", "product")
        .order_by("pk")
    )
    waiting = [b for b in rows if b.status == Backorder.Status.WAITING]
    return waiting, len(rows) - len(waiting)


def _queue(backorders: Iterable[Backorder], spec: Callable[[Backorder], NotificationSpec]) -> BulkNoticeResult:
    """One email per selected waiting line, written with one notification_create_many (existing keys skipped)."""
    result = BulkNoticeResult()
    lines, result.not_waiting = _waiting_lines(backorders)
    result.queued = notification_create_many([spec(backorder) for backorder in lines])
    result.already = len(lines) - result.queued
    return result


@transaction.atomic
def backorders_send_status_update(*, backorders: Iterable[Backorder], as_of: date | None = None) -> BulkNoticeResult:
    """Queue a status update email for each selected waiting line now (at most one such email per line a day;
    the scan's regular updates carry on)."""
    today = as_of or timezone.localdate()
    return _queue(
        backorders,
        lambda backorder: notice_spec(
            kind=Kind.STATUS_UPDATE,
            line=backorder.line,
            order=backorder.line.order,
            key=f"status_update:{backorder.line_id}:now:{today.isoformat()}",
            days_waiting=(today - backorder.placed_at.date()).days,
        ),
    )


@transaction.atomic
def backorders_offer_cancellation(*, backorders: Iterable[Backorder], as_of: date | None = None) -> BulkNoticeResult:
    """Queue the cancellation offer (one-click cancel and refund, in-stock substitutes, the policy's coupon) for
    each selected waiting line now. One offer per line ever: the daily scan will not offer it again."""
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    backorders = list(backorders)
    substitutes = _substitutes_for(b.product_id for b in backorders)
    return _queue(
        backorders,
        lambda backorder: notice_spec(
            kind=Kind.CANCELLATION_OFFER,
            line=backorder.line,
            order=backorder.line.order,
            key=f"cancellation_offer:{backorder.line_id}",
            days_waiting=(today - backorder.placed_at.date()).days,
            substitutes=substitutes.get(backorder.line.product_id, []),
            coupon_code=policy.coupon_code,
            no_eta=backorder.eta is None,
        ),
    )
