from collections.abc import Iterable

from django.db.models import Prefetch, QuerySet

from .models import OrderLine, SalesOrder


def order_with_lines(qs: QuerySet[SalesOrder] | None = None) -> QuerySet[SalesOrder]:
    qs = qs if qs is not None else SalesOrder.objects.all()
    return qs.select_related("customer").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.select_related("product", "backorder").order_by("id"))
    )


def order_lines_lock(*, line_ids: Iterable[int]) -> list[OrderLine]:
    """Lock order lines in pk order (after their products' stock levels: the global lock order)."""
    return list(
        OrderLine.objects.filter(pk__in=sorted(set(line_ids)))
        .select_related("product")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
