"""An order through its life: place, allocate, ship, cancel, with the line math checked at every step."""

import pytest
from django.core.management import CommandError, call_command

from backorders.models import Backorder
from backorders.services import LineRequest, order_allocate_waiting, order_cancel, stock_adjust_and_fill
from backorders.services.cancellation import order_line_units
from inventory.exceptions import InvalidInput, NegativeStock, StockAllocated
from inventory.models import StockLevel, StockMovement
from orders.exceptions import CannotCancel, NothingToShip, ShipCompleteHeld
from orders.models import Allocation, SalesOrder
from orders.services import order_ship

from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import place

pytestmark = pytest.mark.django_db


def units(order, sku):
    return order_line_units(order)[sku]


def test_partial_backorder_line_math_holds_through_allocate_ship_and_cancel(assert_invariants):
    product = ProductFactory(sku="MUG")
    main = WarehouseFactory(code="MAIN", priority=1)
    stock(product, main, 6)
    order = place(("MUG", 10))
    assert units(order, "MUG") == {"quantity": 10, "allocated": 6, "backordered": 4, "shipped": 0, "cancelled": 0}

    order_ship(order=order)
    assert units(order, "MUG") == {"quantity": 10, "allocated": 0, "backordered": 4, "shipped": 6, "cancelled": 0}
    assert StockLevel.objects.get(product=product).on_hand == 0
    assert SalesOrder.objects.get(pk=order.pk).status == "backordered"
    assert_invariants()

    # 3 arrive through a stock count without a fill (e.g. loaded before the queue existed): allocate by hand.
    from inventory.services import stock_adjust

    stock_adjust(product=product, warehouse=main, delta=3, reason="Found in returns cage")
    result = order_allocate_waiting(order=order)
    assert (result.units, result.lines_filled, result.lines_partly_filled) == (3, 0, 1)
    assert units(order, "MUG") == {"quantity": 10, "allocated": 3, "backordered": 1, "shipped": 6, "cancelled": 0}
    assert_invariants()

    cancel = order_cancel(order=order, lines=[LineRequest("MUG", 2)])
    assert (cancel.units_cancelled, cancel.units_released, cancel.backorders_closed) == (2, 1, 1)
    assert units(order, "MUG") == {"quantity": 10, "allocated": 2, "backordered": 0, "shipped": 6, "cancelled": 2}
    assert Backorder.objects.get(line__order=order).status == "cancelled"
    assert_invariants()

    order_ship(order=order)
    assert units(order, "MUG") == {"quantity": 10, "allocated": 0, "backordered": 0, "shipped": 8, "cancelled": 2}
    assert SalesOrder.objects.get(pk=order.pk).status == "shipped"
    assert_invariants()
    call_command("check_inventory_invariants")


def test_positive_adjustment_fills_waiting_lines_first_in_first_out(assert_invariants):
    product = ProductFactory(sku="TEA")
    warehouse = WarehouseFactory(code="MAIN")
    first, second, third = place(("TEA", 3)), place(("TEA", 4)), place(("TEA", 2))

    _, fill = stock_adjust_and_fill(product=product, warehouse=warehouse, delta=5, reason="Delivery")
    assert (fill.units, fill.lines_filled, fill.lines_partly_filled) == (5, 1, 1)
    assert [units(o, "TEA")["allocated"] for o in (first, second, third)] == [3, 2, 0]

    _, fill = stock_adjust_and_fill(product=product, warehouse=warehouse, delta=4, reason="Delivery")
    assert [units(o, "TEA")["allocated"] for o in (first, second, third)] == [3, 4, 2]
    assert [SalesOrder.objects.get(pk=o.pk).status for o in (first, second, third)] == ["allocated"] * 3
    assert Backorder.objects.filter(status="filled").count() == 3
    assert_invariants()


def test_cancelling_allocated_units_refills_the_next_waiting_line(assert_invariants):
    product = ProductFactory(sku="PEN")
    stock(product, WarehouseFactory(), 2)
    early = place(("PEN", 2))
    late = place(("PEN", 1))
    assert units(late, "PEN")["backordered"] == 1

    result = order_cancel(order=early)

    assert (result.units_released, result.refill.units) == (2, 1)
    assert units(early, "PEN")["cancelled"] == 2
    assert units(late, "PEN") == {"quantity": 1, "allocated": 1, "backordered": 0, "shipped": 0, "cancelled": 0}
    assert SalesOrder.objects.get(pk=early.pk).status == "cancelled"
    assert StockLevel.objects.get(product=product).allocated == 1
    assert_invariants()


def test_ship_complete_order_keeps_its_partial_allocation_and_is_held_until_complete(assert_invariants):
    product = ProductFactory(sku="SET")
    warehouse = WarehouseFactory()
    stock(product, warehouse, 2)
    order = place(("SET", 5), ship_complete=True)

    with pytest.raises(ShipCompleteHeld):
        order_ship(order=order)
    assert units(order, "SET")["allocated"] == 2

    stock_adjust_and_fill(product=product, warehouse=warehouse, delta=3, reason="Delivery")
    order_ship(order=order)
    assert units(order, "SET")["shipped"] == 5
    assert_invariants()


def test_ship_with_nothing_allocated_is_refused_and_writes_nothing():
    ProductFactory(sku="AIR")
    order = place(("AIR", 1))
    movements = StockMovement.objects.count()

    with pytest.raises(NothingToShip):
        order_ship(order=order)
    assert StockMovement.objects.count() == movements


def test_cancel_more_than_outstanding_or_an_unknown_sku_changes_nothing():
    product = ProductFactory(sku="CUP")
    stock(product, WarehouseFactory(), 1)
    order = place(("CUP", 3))
    before = units(order, "CUP")

    with pytest.raises(CannotCancel) as excinfo:
        order_cancel(order=order, lines=[LineRequest("CUP", 4), LineRequest("NOPE", 1)])

    assert set(excinfo.value.fields) == {"lines[0].quantity", "lines[1].sku"}
    assert units(order, "CUP") == before
    assert Allocation.objects.get(line__order=order).quantity == 1


def test_cancel_of_a_fully_cancelled_order_is_refused():
    ProductFactory(sku="ONE")
    order = place(("ONE", 1))
    order_cancel(order=order)
    with pytest.raises(CannotCancel):
        order_cancel(order=order)


def test_stock_cannot_go_below_allocated_and_zero_delta_is_refused(assert_invariants):
    product = ProductFactory(sku="BOX")
    warehouse = WarehouseFactory(code="MAIN")
    stock(product, warehouse, 5)
    place(("BOX", 4))
    movements = StockMovement.objects.count()

    with pytest.raises(StockAllocated) as excinfo:
        stock_adjust_and_fill(product=product, warehouse=warehouse, delta=-2, reason="Damaged")
    assert excinfo.value.as_dict()["code"] == "stock_allocated"
    with pytest.raises(InvalidInput):
        stock_adjust_and_fill(product=product, warehouse=warehouse, delta=0, reason="Nothing")

    assert StockMovement.objects.count() == movements
    assert StockLevel.objects.get(product=product).on_hand == 5
    stock_adjust_and_fill(product=product, warehouse=warehouse, delta=-1, reason="Damaged")
    assert StockLevel.objects.get(product=product).on_hand == 4
    assert_invariants()


def test_check_inventory_invariants_names_each_violation_and_exits_1(capsys):
    product = ProductFactory(sku="BAD")
    stock(product, WarehouseFactory(code="MAIN"), 5)
    StockLevel.objects.filter(product=product).update(on_hand=7)  # bypass the ledger on purpose

    with pytest.raises(CommandError) as excinfo:
        call_command("check_inventory_invariants")

    assert excinfo.value.returncode == 1
    assert "BAD @ MAIN: on_hand 7 != ledger sum 5" in capsys.readouterr().err


def test_stock_cannot_go_below_zero_even_with_nothing_allocated():
    product = ProductFactory(sku="BIN")
    warehouse = WarehouseFactory(code="MAIN")
    stock(product, warehouse, 2)

    with pytest.raises(NegativeStock) as excinfo:
        stock_adjust_and_fill(product=product, warehouse=warehouse, delta=-3, reason="Recount")

    assert excinfo.value.as_dict()["code"] == "negative_stock"
    assert StockLevel.objects.get(product=product).on_hand == 2


def test_ship_by_before_the_order_date_is_refused():
    from datetime import timedelta

    from django.utils import timezone

    ProductFactory(sku="DATE")
    with pytest.raises(InvalidInput) as excinfo:
        place(("DATE", 1), ship_by=timezone.localdate() - timedelta(days=1))
    assert "ship_by" in excinfo.value.fields
    assert SalesOrder.objects.count() == 0
