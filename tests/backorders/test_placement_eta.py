"""A placed line's first ETA is pegged without re-reading the queue when it joins the tail (peg_placed_locked),
and is always what a full re-peg of the queue gives: random orders, pinned priorities, tiers, back-dated
orders and purchase orders, then a full re-peg must change nothing."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services import CustomerRequest, LineRequest, order_place
from backorders.services.eta import etas_recompute

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from .factories import waiting_queue

pytestmark = pytest.mark.django_db

order_st = st.tuples(
    st.sampled_from(["A", "A", "B"]),  # SKU
    st.integers(1, 4),  # quantity
    st.sampled_from(["standard", "standard", "vip"]),
    st.sampled_from([None, None, None, 3]),  # back-dated by hours
    st.booleans(),  # a second line, of the other SKU
)


class _Discard(Exception):
    pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    orders=st.lists(order_st, min_size=1, max_size=8),
    strategy=st.sampled_from(["fifo", "tier"]),
    po_units=st.lists(st.integers(1, 5), max_size=2),
    pin=st.booleans(),
)
def test_placement_etas_are_what_a_full_repeg_gives(orders, strategy, po_units, pin):
    try:
        with transaction.atomic():
            BackorderPolicy.objects.filter(pk=1).update(fill_strategy=strategy)
            warehouse = WarehouseFactory()
            a = ProductFactory(sku="A", lead_time_days=9)
            ProductFactory(sku="B", lead_time_days=None)
            for days, units in enumerate(po_units, start=3):
                purchase_order(warehouse, ("A", units), days=days * 2)
            now = timezone.now()
            for i, (sku, quantity, tier, hours_back, twice) in enumerate(orders):
                lines = [LineRequest(sku, quantity)] + ([LineRequest("B" if sku == "A" else "A", 1)] if twice else [])
                order_place(
                    customer=CustomerRequest(email=f"c{i}@example.com", name="c", tier=tier),
                    lines=lines,
                    placed_at=now - timedelta(hours=hours_back) if hours_back else now + timedelta(seconds=i),
                )
                if pin and i == 0:
                    Backorder.objects.filter(line__order__customer__email="c0@example.com").update(priority=-1)
                    etas_recompute(product_ids=[a.pk])
            assert etas_recompute(product_ids=list(Backorder.objects.values_list("product_id", flat=True))) == 0
            raise _Discard
    except _Discard:
        pass


def _backordered_placement_queries(queue_length: int) -> int:
    product = ProductFactory(lead_time_days=10)
    waiting_queue(product, queue_length)
    etas_recompute(product_ids=[product.pk])
    purchase_order(WarehouseFactory(), (product.sku, 3))
    with CaptureQueriesContext(connection) as queries:
        order = order_place(
            customer=CustomerRequest(email=f"late-{queue_length}@example.com", name="Late"),
            lines=[LineRequest(product.sku, 1)],
        )
    backorder = Backorder.objects.get(line__order=order)
    assert backorder.eta_source == "lead_time"  # behind the whole queue: the PO does not reach it
    assert EtaChange.objects.filter(backorder=backorder).count() == 1
    return len(queries)


def test_a_backordered_placement_costs_the_same_queries_behind_5_or_500_waiting_lines():
    assert _backordered_placement_queries(5) == _backordered_placement_queries(500)


@pytest.mark.postgres
def test_a_backordered_placement_holds_its_product_lock_for_one_read_and_one_write():
    """The lock window of an order that waits (what a hot SKU's queue serialises on): the locks and the queue's tail
    in one round trip, the line's ETA and its EtaChange in one statement, then the commit. The policy, the webhook
    subscribers and the email are read and written before the lock."""
    product = ProductFactory(lead_time_days=10)
    waiting_queue(product, 5)
    with CaptureQueriesContext(connection) as queries:
        order_place(customer=CustomerRequest(email="window@example.com", name="W"), lines=[LineRequest(product.sku, 1)])
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    lock = next(i for i, sql in enumerate(statements) if "FOR NO KEY UPDATE" in sql)
    after = statements[lock:]
    assert len(after) == 2, after
    assert "FOR UPDATE OF s" in after[0] and "UNION ALL" not in after[0] and "backorders_backorder" in after[0]
    assert after[1].lstrip().startswith("WITH v AS") and "backorders_etachange" in after[1]
    assert not any("notifications_" in sql or "backorderpolicy" in sql for sql in after)
