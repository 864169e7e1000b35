"""Inventory invariants as set-based queries. Each returns human-readable violations (empty = holds)."""

from django.db.models import Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from inventory.models import StockLevel, StockMovement
from orders.models import Allocation, OrderLine

from .models import Backorder


def invariant_violations(limit: int = 100) -> list[str]:
    """Every broken invariant (at most `limit` of each kind), each naming what to look at."""
    problems: list[str] = []
    levels = StockLevel.objects.select_related("product", "warehouse")

    for level in levels.filter(Q(allocated__gt=F("on_hand")) | Q(allocated__lt=0))[:limit]:
        problems.append(
            f"{level.product.sku} @ {level.warehouse.code}: allocated {level.allocated} "
            f"is outside 0..on_hand {level.on_hand}"
        )

    ledger = (
        StockMovement.objects.filter(stock_level=OuterRef("pk"))
        .values("stock_level")
        .annotate(s=Sum("quantity"))
        .values("s")
    )
    for level in levels.annotate(ledger=Coalesce(Subquery(ledger), 0)).exclude(on_hand=F("ledger"))[:limit]:
        problems.append(
            f"{level.product.sku} @ {level.warehouse.code}: on_hand {level.on_hand} != ledger sum {level.ledger}"
        )

    allocs = (
        Allocation.objects.filter(stock_level=OuterRef("pk"))
        .values("stock_level")
        .annotate(s=Sum("quantity"))
        .values("s")
    )
    for level in levels.annotate(live=Coalesce(Subquery(allocs), 0)).exclude(allocated=F("live"))[:limit]:
        problems.append(
            f"{level.product.sku} @ {level.warehouse.code}: allocated {level.allocated} "
            f"!= sum of allocations {level.live}"
        )

    lines = OrderLine.objects.select_related("order", "product")
    for line in lines.exclude(quantity=F("allocated") + F("shipped") + F("backordered") + F("cancelled"))[:limit]:
        problems.append(
            f"{line.order.number} {line.product.sku}: ordered {line.quantity} != allocated {line.allocated} + shipped "
            f"{line.shipped} + backordered {line.backordered} + cancelled {line.cancelled}"
        )

    line_allocs = Allocation.objects.filter(line=OuterRef("pk")).values("line").annotate(s=Sum("quantity")).values("s")
    for line in lines.annotate(live=Coalesce(Subquery(line_allocs), 0)).exclude(allocated=F("live"))[:limit]:
        problems.append(
            f"{line.order.number} {line.product.sku}: line allocated {line.allocated} != its allocations {line.live}"
        )

    waiting = Backorder.objects.filter(line=OuterRef("pk"), status=Backorder.Status.WAITING)
    waiting_qty = waiting.values("quantity")[:1]
    for line in (
        lines.annotate(open_qty=Coalesce(Subquery(waiting_qty), 0), has_open=Exists(waiting))
        .filter(Q(backordered__gt=0) | Q(has_open=True))
        .exclude(backordered=F("open_qty"))[:limit]
    ):
        problems.append(
            f"{line.order.number} {line.product.sku}: line backordered {line.backordered} != waiting backorder "
            f"quantity {line.open_qty}"
        )
    return problems
