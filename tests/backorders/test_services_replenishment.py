"""Receiving, fill order, ETA pegging and customer-service ETA edits (issue 3's acceptance list)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backorders.exceptions import EtaPermissionDenied
from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services import LineRequest, order_cancel
from backorders.services.cancellation import order_line_units
from backorders.services.eta import backorder_set_eta, etas_recompute
from backorders.services.purchasing import (
    OverReceipt,
    PurchaseOrderClosed,
    purchase_order_cancel,
    purchase_order_receive,
    purchase_order_update,
)
from inventory.models import PurchaseOrder, StockLevel, StockMovement
from orders.models import Customer

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from ..orders.factories import CustomerFactory
from .factories import place, waiting_queue

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate


def day(n: int):
    return TODAY() + timedelta(days=n)


def allocated(*orders, sku="TEA"):
    return [order_line_units(o)[sku]["allocated"] for o in orders]


def set_strategy(code: str) -> None:
    BackorderPolicy.objects.filter(pk=1).update(fill_strategy=code)


def test_receipts_of_5_then_4_fill_3_4_2_in_fifo_order(assert_invariants):
    ProductFactory(sku="TEA")
    warehouse = WarehouseFactory(code="MAIN")
    orders = [place(("TEA", 3)), place(("TEA", 4)), place(("TEA", 2))]
    first = purchase_order(warehouse, ("TEA", 5))
    second = purchase_order(warehouse, ("TEA", 4), days=20)

    result = purchase_order_receive(purchase_order=first)
    assert allocated(*orders) == [3, 2, 0]
    assert (result.fill.lines_filled, result.fill.lines_partly_filled, result.fill.units) == (1, 1, 5)
    assert PurchaseOrder.objects.get(pk=first.pk).status == "received"

    purchase_order_receive(purchase_order=second)
    assert allocated(*orders) == [3, 4, 2]
    assert StockMovement.objects.filter(movement_type="receipt").count() == 2
    assert_invariants()


def test_tier_strategy_serves_a_vip_placed_last_first():
    set_strategy("tier")
    ProductFactory(sku="TEA")
    warehouse = WarehouseFactory()
    standard = place(("TEA", 3))
    loyal = place(("TEA", 3), customer=CustomerFactory(tier=Customer.Tier.LOYAL))
    vip = place(("TEA", 3), customer=CustomerFactory(tier=Customer.Tier.VIP))

    purchase_order_receive(purchase_order=purchase_order(warehouse, ("TEA", 5)))

    assert allocated(standard, loyal, vip) == [0, 2, 3]


def test_a_pinned_line_beats_fifo_and_tier():
    set_strategy("tier")
    ProductFactory(sku="TEA")
    warehouse = WarehouseFactory()
    vip = place(("TEA", 2), customer=CustomerFactory(tier=Customer.Tier.VIP))
    pinned = place(("TEA", 2))
    Backorder.objects.filter(line__order=pinned).update(priority=10)

    purchase_order_receive(purchase_order=purchase_order(warehouse, ("TEA", 2)))

    assert allocated(vip, pinned) == [0, 2]


def test_receiving_part_of_a_po_then_the_rest_and_refusing_over_receipt(assert_invariants):
    ProductFactory(sku="TEA")
    warehouse = WarehouseFactory()
    po = purchase_order(warehouse, ("TEA", 5))

    purchase_order_receive(purchase_order=po, lines=[LineRequest("TEA", 2)])
    assert PurchaseOrder.objects.get(pk=po.pk).status == "partially_received"
    with pytest.raises(OverReceipt) as excinfo:
        purchase_order_receive(purchase_order=po, lines=[LineRequest("TEA", 4)])
    assert "Only 3 of 5 TEA are still outstanding" in excinfo.value.fields["lines[0].quantity"][0]
    assert StockLevel.objects.get(product__sku="TEA").on_hand == 2

    purchase_order_receive(purchase_order=po)
    assert StockLevel.objects.get(product__sku="TEA").on_hand == 5
    with pytest.raises(PurchaseOrderClosed):
        purchase_order_receive(purchase_order=po)
    assert_invariants()


def test_receipt_on_a_cancelled_po_is_refused_and_writes_nothing():
    ProductFactory(sku="TEA")
    po = purchase_order(WarehouseFactory(), ("TEA", 5))
    purchase_order_cancel(purchase_order=po)

    with pytest.raises(PurchaseOrderClosed) as excinfo:
        purchase_order_receive(purchase_order=po)

    assert "cancelled" in excinfo.value.detail
    assert StockMovement.objects.count() == 0


def test_dry_run_previews_the_fill_and_changes_nothing():
    ProductFactory(sku="TEA")
    warehouse = WarehouseFactory()
    a, b, c = place(("TEA", 3)), place(("TEA", 4)), place(("TEA", 2))
    po = purchase_order(warehouse, ("TEA", 5))

    preview = purchase_order_receive(purchase_order=po, dry_run=True)

    assert preview.dry_run
    assert [(e.order_number, e.units, e.still_waiting) for e in preview.fill.entries] == [
        (a.number, 3, 0),
        (b.number, 2, 2),
    ]
    assert [(w.order_number, w.quantity) for w in preview.still_waiting] == [(b.number, 2), (c.number, 2)]
    assert allocated(a, b, c) == [0, 0, 0]
    assert PurchaseOrder.objects.get(pk=po.pk).status == "ordered"
    assert StockMovement.objects.count() == 0


def etas(*orders, sku="TEA"):
    rows = {b.line.order_id: b for b in Backorder.objects.filter(line__order__in=orders).select_related("line")}
    return [(rows[o.pk].eta, rows[o.pk].eta_source) for o in orders]


def test_pegging_po1_po2_po2_then_lead_time_never_before_po2(assert_invariants):
    ProductFactory(sku="TEA", lead_time_days=5)
    warehouse = WarehouseFactory()
    orders = [place(("TEA", 3)), place(("TEA", 4)), place(("TEA", 6)), place(("TEA", 5))]
    po1 = purchase_order(warehouse, ("TEA", 5), days=10)
    po2 = purchase_order(warehouse, ("TEA", 10), days=25)

    # handling days (default 1) come on top of the arrival date
    assert etas(*orders) == [
        (day(11), "purchase_order"),
        (day(26), "purchase_order"),
        (day(26), "purchase_order"),
        (day(26), "lead_time"),
    ]

    changes_before = EtaChange.objects.count()
    purchase_order_update(purchase_order=po2, expected_date=day(40))
    assert etas(*orders) == [
        (day(11), "purchase_order"),
        (day(41), "purchase_order"),
        (day(41), "purchase_order"),
        (day(41), "lead_time"),
    ]
    assert EtaChange.objects.count() - changes_before == 3  # exactly the lines PO2 covers, and the one behind

    # PO1 arrives short: 2 of 5. The first line gets 2 units, everyone else re-pegs against what is left.
    purchase_order_receive(purchase_order=po1, lines=[LineRequest("TEA", 2)])
    assert allocated(*orders) == [2, 0, 0, 0]
    assert etas(*orders) == [
        (day(11), "purchase_order"),  # 1 still waiting: covered by PO1's remaining 3
        (day(41), "purchase_order"),  # 4 more: 2 of PO1 left, then PO2
        (day(41), "purchase_order"),
        (day(41), "lead_time"),
    ]
    assert_invariants()


def test_lead_time_eta_without_any_po_and_none_for_discontinued():
    ProductFactory(sku="TEA", lead_time_days=14)
    order = place(("TEA", 1))
    assert etas(order) == [(day(15), "lead_time")]


def test_cancelled_po_repegs_to_lead_time():
    ProductFactory(sku="TEA", lead_time_days=3)
    order = place(("TEA", 1))
    po = purchase_order(WarehouseFactory(), ("TEA", 5), days=20)
    assert etas(order) == [(day(21), "purchase_order")]

    purchase_order_cancel(purchase_order=po)

    assert etas(order) == [(day(4), "lead_time")]


def test_cancelling_a_waiting_line_moves_the_ones_behind_forward():
    ProductFactory(sku="TEA", lead_time_days=30)
    warehouse = WarehouseFactory()
    first, second = place(("TEA", 5)), place(("TEA", 5))
    purchase_order(warehouse, ("TEA", 5), days=10)
    assert etas(second) == [(day(31), "lead_time")]

    order_cancel(order=first)

    assert etas(second) == [(day(11), "purchase_order")]


def cs_user(with_permission: bool) -> User:
    user = User.objects.create_user(f"cs{with_permission}", password="x")
    if with_permission:
        user.user_permissions.add(Permission.objects.get(codename="change_backorder_eta"))
    return User.objects.get(pk=user.pk)


def test_manual_eta_wins_until_cleared_and_every_change_is_kept():
    ProductFactory(sku="TEA", lead_time_days=14)
    order = place(("TEA", 1))
    backorder = Backorder.objects.get(line__order=order)
    user = cs_user(True)

    assert backorder_set_eta(backorders=[backorder], eta=day(30), reason="Supplier called", acting_user=user) == 1
    purchase_order(WarehouseFactory(), ("TEA", 5), days=5)  # a recompute does not override the manual date
    assert etas(order) == [(day(30), "manual")]

    backorder_set_eta(backorders=[backorder], eta=None, reason="Back to the plan", acting_user=user)
    assert etas(order) == [(day(6), "purchase_order")]
    history = list(EtaChange.objects.filter(backorder=backorder).order_by("id").values_list("new_source", "reason"))
    assert history == [
        ("lead_time", "Lead time (no open purchase order covers it)"),
        ("manual", "Supplier called"),
        ("", "Manual ETA cleared: Back to the plan"),
        ("purchase_order", f"Pegged to {PurchaseOrder.objects.get().number}"),
    ]
    assert EtaChange.objects.filter(reason="Supplier called").get().user == user


def test_eta_edit_without_the_customer_service_permission_is_refused():
    ProductFactory(sku="TEA", lead_time_days=14)
    backorder = Backorder.objects.get(line__order=place(("TEA", 1)))

    with pytest.raises(EtaPermissionDenied):
        backorder_set_eta(backorders=[backorder], eta=day(30), reason="x", acting_user=cs_user(False))

    assert etas(backorder.line.order) == [(day(15), "lead_time")]


def _receive_queries(lines: int, sku: str) -> int:
    product = ProductFactory(sku=sku, lead_time_days=10)
    orders = waiting_queue(product, lines)
    po = purchase_order(WarehouseFactory(code=f"W-{sku}"), (sku, lines))
    with CaptureQueriesContext(connection) as ctx:
        result = purchase_order_receive(purchase_order=po, preview_limit=0)
    assert (result.fill.lines_filled, result.fill.units) == (lines, lines)
    assert allocated(orders[0], orders[-1], sku=sku) == [1, 1]
    return len(ctx.captured_queries)


def test_fill_query_count_does_not_grow_with_waiting_lines():
    assert _receive_queries(3, "FEW") == _receive_queries(60, "MANY")


@pytest.mark.postgres
def test_a_fill_of_10000_waiting_lines_in_one_receipt_runs_in_a_constant_number_of_queries(assert_invariants):
    assert _receive_queries(10_000, "HUGE") == _receive_queries(5, "TINY")
    assert_invariants()


def test_recompute_is_idempotent():
    ProductFactory(sku="TEA", lead_time_days=14)
    place(("TEA", 1))
    product_ids = [Backorder.objects.get().product_id]
    assert etas_recompute(product_ids=product_ids) == 0


def test_changing_a_products_lead_time_or_discontinuing_it_repegs_waiting_lines():
    from backorders.services.catalog import product_update

    product = ProductFactory(sku="TEA", lead_time_days=14)
    order = place(("TEA", 1))

    product_update(product=product, changes={"lead_time_days": 3})
    assert etas(order) == [(day(4), "lead_time")]

    product_update(product=product, changes={"discontinued": True})
    assert etas(order) == [(None, "")]
