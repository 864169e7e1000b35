"""Real PostgreSQL, real threads, real row locks: nothing oversold, nothing written twice, no deadlocks."""

import random

import pytest
from django.db.models import Sum

from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services import LineRequest, order_cancel
from backorders.services.eta import etas_recompute
from inventory.exceptions import InsufficientStock
from inventory.models import StockLevel
from orders.models import Customer, OrderLine, SalesOrder

from ..concurrency import run_concurrently
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_120_single_unit_orders_from_12_threads_allocate_exactly_the_40_in_stock(assert_invariants):
    product = ProductFactory(sku="HOT")
    stock(product, WarehouseFactory(code="A", priority=1), 25)
    stock(product, WarehouseFactory(code="B", priority=2), 15)
    customers = [CustomerFactory() for _ in range(120)]

    results = run_concurrently([lambda c=c: place(("HOT", 1), customer=c) for c in customers], threads=12)

    assert [r for r in results if isinstance(r, Exception)] == []
    lines = OrderLine.objects.filter(product=product).aggregate(a=Sum("allocated"), b=Sum("backordered"))
    assert (lines["a"], lines["b"]) == (40, 80)
    assert StockLevel.objects.filter(product=product).aggregate(a=Sum("allocated"))["a"] == 40
    assert Backorder.objects.filter(product=product, status="waiting").count() == 80
    assert_invariants()


def test_backorders_denied_10_units_exactly_10_orders_succeed_and_the_rest_write_nothing(assert_invariants):
    product = ProductFactory(sku="SCARCE", backorders_allowed=False)
    stock(product, WarehouseFactory(code="A"), 10)
    emails = [f"buyer{i}@example.com" for i in range(60)]

    results = run_concurrently(
        [lambda e=e: place(("SCARCE", 1), customer=Customer(email=e, name="Buyer")) for e in emails], threads=12
    )

    placed = [r for r in results if isinstance(r, SalesOrder)]
    rejected = [r for r in results if isinstance(r, InsufficientStock)]
    assert (len(placed), len(rejected)) == (10, 50)
    assert all(r.shortages[0].sku == "SCARCE" and r.shortages[0].available == 0 for r in rejected)
    assert SalesOrder.objects.count() == 10
    assert Customer.objects.count() == 10
    assert OrderLine.objects.aggregate(b=Sum("backordered"))["b"] == 0
    assert StockLevel.objects.get(product=product).allocated == 10
    assert_invariants()


def test_multi_sku_orders_in_opposite_sku_order_never_deadlock(assert_invariants):
    warehouses = [WarehouseFactory(code=f"W{i}", priority=i + 1) for i in range(3)]
    skus = ["RED", "GREEN", "BLUE"]
    for sku in skus:
        product = ProductFactory(sku=sku)
        for warehouse in warehouses:
            stock(product, warehouse, 7)
    customers = [CustomerFactory() for _ in range(90)]
    rng = random.Random(7)

    def order(customer: Customer) -> SalesOrder:
        picked = skus[:]
        rng.shuffle(picked)
        return place(*[(sku, 1) for sku in picked], customer=customer)

    results = run_concurrently([lambda c=c: order(c) for c in customers], threads=12)

    assert [r for r in results if isinstance(r, Exception)] == []
    for sku in skus:
        totals = OrderLine.objects.filter(product__sku=sku).aggregate(a=Sum("allocated"), b=Sum("backordered"))
        assert (totals["a"], totals["b"]) == (21, 69)
    assert_invariants()


def test_concurrent_cancellations_and_orders_refill_the_queue_without_overselling(assert_invariants):
    product = ProductFactory(sku="SWAP")
    stock(product, WarehouseFactory(code="A"), 20)
    first_orders = [place(("SWAP", 2)) for _ in range(10)]  # takes all 20
    newcomers = [CustomerFactory() for _ in range(30)]

    tasks = [lambda o=o: order_cancel(order=o, lines=[LineRequest("SWAP", 1)]) for o in first_orders]
    tasks += [lambda c=c: place(("SWAP", 1), customer=c) for c in newcomers]
    random.Random(3).shuffle(tasks)
    results = run_concurrently(tasks, threads=10)

    assert [r for r in results if isinstance(r, Exception)] == []
    level = StockLevel.objects.get(product=product)
    totals = OrderLine.objects.filter(product=product).aggregate(
        a=Sum("allocated"), b=Sum("backordered"), c=Sum("cancelled")
    )
    assert level.allocated == 20 == totals["a"]
    assert totals["c"] == 10
    assert totals["b"] == 30 - 10
    assert_invariants()


def test_receipts_and_new_orders_for_the_same_sku_never_oversell_or_fill_twice(assert_invariants):
    from backorders.services.purchasing import purchase_order_receive

    product = ProductFactory(sku="RESTOCK")
    warehouse = WarehouseFactory(code="A")
    waiting = [place(("RESTOCK", 2)) for _ in range(15)]  # 30 units waiting
    receipts = [purchase_order(warehouse, ("RESTOCK", 4)) for _ in range(6)]  # 24 units arriving
    newcomers = [CustomerFactory() for _ in range(30)]

    tasks = [lambda po=po: purchase_order_receive(purchase_order=po) for po in receipts]
    tasks += [lambda c=c: place(("RESTOCK", 1), customer=c) for c in newcomers]
    random.Random(11).shuffle(tasks)
    results = run_concurrently(tasks, threads=10)

    assert [r for r in results if isinstance(r, Exception)] == []
    level = StockLevel.objects.get(product=product)
    assert (level.on_hand, level.allocated) == (24, 24)
    totals = OrderLine.objects.filter(product=product).aggregate(a=Sum("allocated"), b=Sum("backordered"))
    assert (totals["a"], totals["b"]) == (24, 30 + 30 - 24)
    # FIFO: the 15 orders that waited before any receipt are served first; nobody is filled twice
    assert [OrderLine.objects.get(order=o).allocated for o in waiting[:12]] == [2] * 12
    assert [OrderLine.objects.get(order=o).backordered for o in waiting[12:]] == [2, 2, 2]
    assert_invariants()


def test_orders_that_backorder_with_the_policy_row_missing_never_deadlock(assert_invariants):
    """A placement reads the policy before it takes its product locks; a read that created the missing row would
    make the first placements wait on each other's uncommitted insert behind those locks (a deadlock)."""
    BackorderPolicy.objects.all().delete()
    skus = ["ONE", "TWO", "THREE"]
    for sku in skus:
        ProductFactory(sku=sku)  # nothing in stock: every line waits
    customers = [CustomerFactory() for _ in range(48)]
    rng = random.Random(3)

    def order(customer: Customer) -> SalesOrder:
        picked = rng.sample(skus, 2)
        return place(*[(sku, 1) for sku in picked], customer=customer)

    results = run_concurrently([lambda c=c: order(c) for c in customers], threads=12)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert Backorder.objects.filter(status="waiting").count() == 96
    assert not BackorderPolicy.objects.exists()  # reading it wrote nothing
    assert_invariants()


def test_lines_that_join_one_queue_at_once_get_the_etas_a_full_repeg_gives(assert_invariants):
    """60 concurrent one-unit orders of a SKU with nothing in stock and 25 units on order: each line is pegged when
    it joins the queue, under the product's lock (queue_tails read with the locks), and none is left with the ETA
    of a position it did not take. (A line whose order committed after a later-placed one joins ahead of it: that
    placement re-pegs the queue, so some lines' ETAs change again, each change recorded.)"""
    product = ProductFactory(sku="TAIL", lead_time_days=20)
    purchase_order(WarehouseFactory(code="A"), ("TAIL", 25), days=5)
    customers = [CustomerFactory() for _ in range(60)]

    results = run_concurrently([lambda c=c: place(("TAIL", 1), customer=c) for c in customers], threads=12)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert etas_recompute(product_ids=[product.pk]) == 0  # a full re-peg changes nothing
    sources = list(Backorder.objects.filter(product=product).values_list("eta_source", flat=True))
    assert (sources.count("purchase_order"), sources.count("lead_time")) == (25, 35)
    for backorder in Backorder.objects.filter(product=product):  # every line's ETA history ends at its ETA
        latest = EtaChange.objects.filter(backorder=backorder).order_by("-created_at", "-id").first()
        assert (latest.new_eta, latest.new_source) == (backorder.eta, backorder.eta_source)
    assert_invariants()
