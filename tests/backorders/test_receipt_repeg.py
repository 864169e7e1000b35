"""A receipt re-pegs only the head of the queue it can have moved (backorders.repeg.repeg_after_receipt), and leaves
exactly the ETAs a full re-peg would: after it, a full re-peg finds nothing to change."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backorders.models import Backorder, BackorderPolicy
from backorders.policies import fill_strategy
from backorders.repeg import repeg
from backorders.services import LineRequest
from backorders.services.purchasing import purchase_order_receive
from inventory.models import PurchaseOrder, PurchaseOrderLine, StockLevel, Warehouse

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from .factories import waiting_queue
from .test_repeg_sql import _build, _changes, _Undo, line_st, product_st

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def _full_repeg_changes(ids: list[int]) -> list[tuple]:
    policy = BackorderPolicy.current()
    strategy = fill_strategy(policy.fill_strategy)
    today = timezone.localdate()
    return _changes(lambda: repeg(product_ids=ids, today=today, handling_days=policy.handling_days, strategy=strategy))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    products=st.lists(product_st, min_size=1, max_size=2),
    strategy=st.sampled_from(["fifo", "tier"]),
    pick=st.integers(0, 50),
    units=st.integers(1, 8),
    on_hand=st.sampled_from([0, 0, 0, 2]),
)
def test_after_a_receipt_a_full_repeg_changes_nothing(products, strategy, pick, units, on_hand):
    _receive_then_repeg_everything(products, strategy, pick, units, on_hand)


def _receive_then_repeg_everything(products: list[dict], strategy: str, pick: int, units: int, on_hand: int) -> None:
    """Given pegged queues, receive `units` of one open PO line (the `pick`-th), then assert that a full re-peg of
    every product changes nothing."""
    try:
        with transaction.atomic():
            ids = _build(products)
            BackorderPolicy.objects.filter(pk=1).update(fill_strategy=strategy)
            policy = BackorderPolicy.current()
            repeg(
                product_ids=ids,
                today=timezone.localdate(),
                handling_days=policy.handling_days,
                strategy=fill_strategy(strategy),
            )  # given: pegged, as every change to a queue or its supply leaves it
            receivable = list(
                PurchaseOrderLine.objects.filter(product_id__in=ids, received__lt=F("quantity"))
                .exclude(purchase_order__status__in=[PurchaseOrder.Status.CANCELLED, PurchaseOrder.Status.RECEIVED])
                .select_related("product", "purchase_order")
                .order_by("pk")
            )
            assume(receivable)
            line = receivable[pick % len(receivable)]
            if on_hand:  # units already available before the receipt: the fill serves more than it received
                StockLevel.objects.create(
                    product=line.product, warehouse=Warehouse.objects.get(code="PEG"), on_hand=on_hand
                )

            purchase_order_receive(
                purchase_order=line.purchase_order,
                lines=[LineRequest(line.product.sku, min(units, line.outstanding))],
                preview_limit=0,
            )

            assert _full_repeg_changes(ids) == []
            raise _Undo
    except _Undo:
        pass


# Open supply only and longer queues: most receipts then take the bounded path, with lines ahead of the bound.
open_supply_st = st.tuples(
    st.integers(1, 8),
    st.integers(0, 2),
    st.integers(-5, 30),
    st.one_of(st.none(), st.integers(-5, 30)),
    st.sampled_from(["ordered", "partially_received"]),
)
busy_product_st = st.fixed_dictionaries(
    {
        "lines": st.lists(line_st, min_size=4, max_size=14),
        "supply": st.lists(open_supply_st, min_size=2, max_size=5),
        "lead_time": st.one_of(st.none(), st.integers(0, 20)),
        "supplier_lead": st.one_of(st.none(), st.integers(0, 20)),
        "discontinued": st.just(False),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(product=busy_product_st, strategy=st.sampled_from(["fifo", "tier"]), pick=st.integers(0, 50))
def test_after_a_receipt_of_a_later_po_a_full_repeg_changes_nothing(product, strategy, pick):
    _receive_then_repeg_everything([product], strategy, pick, units=8, on_hand=0)


def _day(n: int):
    return timezone.localdate() + timedelta(days=n)


def _etas(product) -> list[tuple]:
    return list(
        Backorder.objects.filter(product=product, status=Backorder.Status.WAITING)
        .order_by("placed_at", "line_id")
        .values_list("quantity", "eta", "eta_source")
    )


def test_receiving_a_later_po_first_moves_the_lines_an_earlier_po_now_covers():
    product = ProductFactory(sku="TEA", lead_time_days=30)
    warehouse = WarehouseFactory()
    waiting_queue(product, 6, quantity=2)  # 12 units waiting
    purchase_order(warehouse, ("TEA", 4), days=5)
    late = purchase_order(warehouse, ("TEA", 4), days=20)
    assert _etas(product) == [
        (2, _day(6), "purchase_order"),
        (2, _day(6), "purchase_order"),
        (2, _day(21), "purchase_order"),
        (2, _day(21), "purchase_order"),
        (2, _day(31), "lead_time"),
        (2, _day(31), "lead_time"),
    ]

    purchase_order_receive(purchase_order=late)  # early: its 4 units fill the first two lines

    assert _etas(product) == [
        (2, _day(6), "purchase_order"),  # the early PO now covers the lines behind
        (2, _day(6), "purchase_order"),
        (2, _day(31), "lead_time"),
        (2, _day(31), "lead_time"),
    ]
    assert _full_repeg_changes([product.pk]) == []


def _receipt_statements(waiting: int, sku: str) -> int:
    """Statements of a receipt of 10 units at the head of a queue of `waiting` lines with more POs behind."""
    product = ProductFactory(sku=sku, lead_time_days=10)
    warehouse = WarehouseFactory(code=f"W-{sku}")
    waiting_queue(product, waiting)
    first = purchase_order(warehouse, (sku, 10), days=5)
    purchase_order(warehouse, (sku, waiting // 2), days=9)
    with CaptureQueriesContext(connection) as ctx:
        result = purchase_order_receive(purchase_order=first, preview_limit=5)
    assert (result.fill.lines_filled, len(result.still_waiting)) == (10, 5)
    assert _full_repeg_changes([product.pk]) == []
    return len(ctx.captured_queries)


def test_a_receipt_costs_the_same_statements_however_long_the_queue_behind():
    # 13 statements (the orders' status and the filled lines' emails are written with the fill's other writes), the
    # savepoint of the test's transaction (2) and the first receipt's new stock row (2)
    assert _receipt_statements(20, "SHORT") == _receipt_statements(2_000, "LONG") == 17


def test_a_receipt_with_nobody_waiting_still_puts_the_units_on_hand_and_books_them(assert_invariants):
    ProductFactory(sku="TEA")
    ProductFactory(sku="MUG")
    warehouse = WarehouseFactory()
    waiting_queue(ProductFactory(sku="CUP"), 2)
    po = purchase_order(warehouse, ("TEA", 5), ("MUG", 3), ("CUP", 4))

    result = purchase_order_receive(purchase_order=po)

    assert result.fill.units == 2  # CUP's two lines; TEA and MUG wait for nobody
    levels = dict(StockLevel.objects.filter(warehouse=warehouse).values_list("product__sku", "on_hand"))
    assert levels == {"TEA": 5, "MUG": 3, "CUP": 4}
    assert sorted(po.lines.values_list("received", flat=True)) == [3, 4, 5]
    assert PurchaseOrder.objects.get(pk=po.pk).status == "received"
    assert_invariants()  # the ledger sums to on hand, allocations to allocated


def test_a_receipt_that_fills_nothing_writes_on_hand_and_the_ledger_alone(assert_invariants):
    product = ProductFactory(sku="TEA")
    warehouse = WarehouseFactory()
    po = purchase_order(warehouse, ("TEA", 5))

    purchase_order_receive(purchase_order=po, lines=[LineRequest("TEA", 2)])

    assert StockLevel.objects.get(product=product, warehouse=warehouse).on_hand == 2
    assert po.lines.get().received == 2
    assert PurchaseOrder.objects.get(pk=po.pk).status == "partially_received"
    assert_invariants()


@pytest.mark.parametrize("chunk", [2, 3, 10_000])
@pytest.mark.parametrize("units", [5, 6, 20])
def test_the_receipts_preview_of_who_still_waits_is_the_queue_after_it(monkeypatch, chunk, units):
    from backorders.services import allocation

    monkeypatch.setattr(allocation, "FILL_CHUNK_LINES", chunk)
    product = ProductFactory(sku="TEA")
    waiting_queue(product, 8, quantity=2)  # 16 units waiting
    po = purchase_order(WarehouseFactory(), ("TEA", units))

    result = purchase_order_receive(purchase_order=po, preview_limit=3)

    after = list(
        Backorder.objects.filter(product=product, status=Backorder.Status.WAITING)
        .order_by("-priority", "placed_at", "line_id")
        .values_list("pk", "line__order__number", "quantity")[:3]
    )
    assert [(w.backorder_id, w.order_number, w.quantity) for w in result.still_waiting] == after
    assert all(w.sku == "TEA" for w in result.still_waiting)
