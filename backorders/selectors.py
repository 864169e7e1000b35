from django.db.models import F, QuerySet, Sum, Window
from django.db.models.expressions import RowRange

from .models import Backorder
from .policies import FillStrategy


def backorder_fill_queue(*, product_id: int, strategy: FillStrategy) -> QuerySet[Backorder]:
    """The product's waiting lines in fill order (pinned priority, strategy, line id)."""
    return (
        Backorder.objects.filter(product_id=product_id, status=Backorder.Status.WAITING)
        .order_by(*strategy.queue_order())
    )


def backorder_fill_candidates(*, product_id: int, strategy: FillStrategy, units: int) -> list[Backorder]:
    """The head of the queue that `units` reach: lines with fewer than `units` waiting ahead of them.

    One ordered read however long the queue: a running sum over the queue order, filtered in SQL.
    Each row carries `units_ahead` (the waiting quantity in front of it).
    """
    queue = (
        backorder_fill_queue(product_id=product_id, strategy=strategy)
        .annotate(
            running=Window(Sum("quantity"), order_by=strategy.queue_order(), frame=RowRange(start=None, end=0)),
        )
        .annotate(units_ahead=F("running") - F("quantity"))
        .filter(units_ahead__lt=units)
        .select_related("line")
        .only("id", "line_id", "quantity", "product_id", "placed_at", "priority", "line__order")
    )
    return list(queue.order_by(*strategy.queue_order()))
