from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from .models import OrderLine, SalesOrder


def order_with_lines(qs: QuerySet[SalesOrder] | None = None) -> QuerySet[SalesOrder]:
    qs = qs if qs is not None else SalesOrder.objects.all()
    return qs.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product", "backorder").order_by("id"))
    )


def order_with_lines_by_pk(pk: int) -> SalesOrder:
    """One order as order_with_lines() gives it, in one query: its lines with the order, customer, product and
    backorder joined (an order without lines falls back to order_with_lines)."""
    lines = list(
        OrderLine.objects.filter(order_id=pk).select_related("order__customer", "product", "backorder").order_by("id")
    )
    if not lines:
        return order_with_lines().get(pk=pk)
    order = lines[0].order
    for line in lines:
        line.order = order
    cached = order.lines.all()
    cached._result_cache, cached._prefetch_done = lines, True
    order._prefetched_objects_cache = {"lines": cached}
    return order


def order_lines_lock(*, line_ids: Iterable[int]) -> list[OrderLine]:
    """Lock order lines in pk order (after their products' stock levels: the global lock order)."""
    return list(
        OrderLine.objects.filter(pk__in=sorted(set(line_ids)))
        .select_related("product")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
