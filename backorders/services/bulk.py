"""Customer emails customer service sends on demand (admin bulk actions): a status update now, a
cancellation offer now. The same notices, context and dedupe conventions as the daily scan
(backorders.services.compliance.notify), so the scan never sends a second offer after one sent here.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils import timezone

from notifications.models import Notification

from ..models import Backorder, BackorderPolicy
from .compliance import _substitutes, notify

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


@transaction.atomic
def backorders_send_status_update(*, backorders: Iterable[Backorder], as_of: date | None = None) -> BulkNoticeResult:
    """Queue a status update email for each selected waiting line now (at most one such email per line a day;
    the scan's regular updates carry on)."""
    today = as_of or timezone.localdate()
    result = BulkNoticeResult()
    lines, result.not_waiting = _waiting_lines(backorders)
    for backorder in lines:
        line = backorder.line
        notification = notify(
            kind=Kind.STATUS_UPDATE,
            line=line,
            order=line.order,
            key=f"status_update:{line.pk}:now:{today.isoformat()}",
            days_waiting=(today - backorder.placed_at.date()).days,
        )
        if notification is None:
            result.already += 1
        else:
            result.queued += 1
    return result


@transaction.atomic
def backorders_offer_cancellation(*, backorders: Iterable[Backorder], as_of: date | None = None) -> BulkNoticeResult:
    """Queue the cancellation offer (one-click cancel and refund, in-stock substitutes, the policy's coupon) for
    each selected waiting line now. One offer per line ever: the daily scan will not offer it again."""
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    result = BulkNoticeResult()
    lines, result.not_waiting = _waiting_lines(backorders)
    for backorder in lines:
        line = backorder.line
        notification = notify(
            kind=Kind.CANCELLATION_OFFER,
            line=line,
            order=line.order,
            key=f"cancellation_offer:{line.pk}",
            days_waiting=(today - backorder.placed_at.date()).days,
            substitutes=_substitutes(line),
            coupon_code=policy.coupon_code,
            no_eta=backorder.eta is None,
        )
        if notification is None:
            result.already += 1
        else:
            result.queued += 1
    return result
