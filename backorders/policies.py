"""Swappable backorder rules as small strategy classes (django-oscar style).

A fill strategy says in which order a product's waiting lines are served. Pinned priority always
comes first and line id always last, so the order is total and every strategy is deterministic.
"""

from django.db.models import Case, IntegerField, OrderBy, Value, When
from django.db.models.expressions import F

from orders.models import TIER_RANK


class FillStrategy:
    code = ""
    label = ""

    def queue_order(self, prefix: str = "") -> list[OrderBy]:
        """ORDER BY for a Backorder queryset (or one related to it through `prefix`)."""
        return [F(f"{prefix}priority").desc(), *self.strategy_keys(prefix), F(f"{prefix}line_id").asc()]

    def strategy_keys(self, prefix: str) -> list[OrderBy]:
        raise NotImplementedError


class FifoStrategy(FillStrategy):
    code = "fifo"
    label = "First in, first out (order placed time)"

    def strategy_keys(self, prefix: str) -> list[OrderBy]:
        return [F(f"{prefix}placed_at").asc()]


class TierStrategy(FillStrategy):
    code = "tier"
    label = "Customer tier (VIP, loyal, standard), then order placed time"

    def strategy_keys(self, prefix: str) -> list[OrderBy]:
        tier_field = f"{prefix}line__order__customer__tier"
        rank = Case(
            *[When(**{tier_field: tier}, then=Value(rank)) for tier, rank in TIER_RANK.items()],
            default=Value(0),
            output_field=IntegerField(),
        )
        return [rank.desc(), F(f"{prefix}placed_at").asc()]


FILL_STRATEGIES: dict[str, type[FillStrategy]] = {s.code: s for s in (FifoStrategy, TierStrategy)}


def fill_strategy(code: str | None = None) -> FillStrategy:
    """The strategy named, or the one the backorder policy sets."""
    if code is None:
        from .models import BackorderPolicy

        code = BackorderPolicy.current().fill_strategy
    try:
        return FILL_STRATEGIES[code]()
    except KeyError:
        raise ValueError(f"Unknown fill strategy {code!r}; choose one of {', '.join(FILL_STRATEGIES)}.") from None
