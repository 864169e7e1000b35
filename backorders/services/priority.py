"""Pinning a waiting line's place in its product's queue (the admin's "Pin priority")."""

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet

from inventory.exceptions import InvalidInput
from inventory.selectors import products_lock

from ..models import Backorder
from .eta import etas_recompute

logger = logging.getLogger(__name__)

# Backorder.priority is an IntegerField; keep well inside its range so the value means something to staff.
PRIORITY_MIN = -1_000_000
PRIORITY_MAX = 1_000_000


@transaction.atomic
def backorder_set_priority(
    *,
    backorders: QuerySet[Backorder] | Iterable[Backorder | int],
    priority: int,
    acting_user: AbstractBaseUser | None = None,
) -> int:
    """Pin these backorders at `priority` (higher is filled first; 0 unpins). Returns how many were set.

    Only waiting lines change: a filled or cancelled line has left the queue. Quantities and status
    stay; nothing is filled (stock a pinned line could use has already gone to the queue), but the
    queue order changed, so the products' ETAs are re-pegged. Takes the per-SKU lock first (the global
    lock order: products, then backorders), then one set-based UPDATE.
    """
    if not isinstance(priority, int) or isinstance(priority, bool) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInput(
            f"Priority must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}.",
            fields={"priority": [f"Enter a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}."]},
        )
    if isinstance(backorders, QuerySet):
        ids = set(backorders.order_by().values_list("pk", flat=True))
    else:
        ids = {b if isinstance(b, int) else b.pk for b in backorders}
    if not ids:
        return 0
    waiting = Backorder.objects.filter(pk__in=ids, status=Backorder.Status.WAITING)
    product_ids = set(waiting.values_list("product_id", flat=True))
    if not product_ids:
        return 0
    products_lock(product_ids=product_ids)
    changed = waiting.update(priority=priority)
    etas_recompute(product_ids=product_ids)
    logger.info(
        "backorder priority set to %s on %s of %s selected line(s) by %s",
        priority,
        changed,
        len(ids),
        getattr(acting_user, "pk", None),
    )
    return changed
