from datetime import date, timedelta

from django.conf import settings
from django.db.models import F, QuerySet, Sum, TextChoices, Window
from django.db.models.expressions import RowRange
from django.utils import timezone

from inventory.models import Product

from .models import Backorder
from .policies import FillStrategy


def backorder_fill_queue(*, product_id: int, strategy: FillStrategy) -> QuerySet[Backorder]:
    """The product's waiting lines in fill order (pinned priority, strategy, line id)."""
    return Backorder.objects.filter(product_id=product_id, status=Backorder.Status.WAITING).order_by(
        *strategy.queue_order()
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


class Availability(TextChoices):
    IN_STOCK = "in_stock", "In stock"
    LOW_STOCK = "low_stock", "Low stock"
    BACKORDER = "backorder", "Backorder"
    OUT_OF_STOCK = "out_of_stock", "Out of stock"


def availability_for(*, product: Product, available: int) -> str:
    """What a storefront shows: in_stock, low_stock (0 < available <= max(reorder point, safety stock)),
    backorder (orderable, will wait), out_of_stock (not orderable: backorders denied or discontinued)."""
    if available > 0:
        return (
            Availability.LOW_STOCK
            if available <= max(product.reorder_point, product.safety_stock)
            else Availability.IN_STOCK
        )
    return Availability.BACKORDER if product.is_backorderable else Availability.OUT_OF_STOCK


def lead_time_eta(*, product: Product, as_of: date | None = None) -> date | None:
    """today + the product's lead time + handling days; None when the product cannot be restocked."""
    if product.discontinued or product.lead_time_days is None:
        return None
    today = as_of or timezone.localdate()
    return today + timedelta(days=product.lead_time_days + settings.BACKORDER_HANDLING_DAYS)


def product_next_eta(*, product: Product, available: int, as_of: date | None = None) -> date | None:
    """The ETA a new one-unit order would get now: None when in stock or not orderable.

    Never earlier than the ETA of the last line already waiting (ETAs never decrease along the queue).
    """
    if available > 0 or not product.is_backorderable:
        return None
    eta = lead_time_eta(product=product, as_of=as_of)
    last_waiting = (
        Backorder.objects.filter(product=product, status=Backorder.Status.WAITING, eta__isnull=False)
        .order_by("-eta")
        .values_list("eta", flat=True)
        .first()
    )
    if last_waiting and (eta is None or last_waiting > eta):
        return last_waiting
    return eta
