import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backorders.models import Backorder
from backorders.services import CustomerRequest, LineRequest, order_place
from backorders.services.cancellation import order_line_units
from inventory.exceptions import InsufficientStock, InvalidInput
from inventory.models import StockLevel
from orders.models import Allocation, Customer, OrderLine, SalesOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import place

pytestmark = pytest.mark.django_db


def test_partial_backorder_allocates_what_is_there_and_backorders_the_rest(assert_invariants):
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 6)

    order = place(("MUG", 10))

    assert order_line_units(order)["MUG"] == {
        "quantity": 10,
        "allocated": 6,
        "backordered": 4,
        "shipped": 0,
        "cancelled": 0,
    }
    assert order.status == SalesOrder.Status.BACKORDERED
    backorder = Backorder.objects.get(line__order=order)
    assert (backorder.quantity, backorder.original_quantity, backorder.status) == (4, 4, "waiting")
    assert StockLevel.objects.get(product=product).allocated == 6
    assert_invariants()


def test_allocation_follows_warehouse_priority_then_most_available():
    product = ProductFactory(sku="LAMP")
    first = WarehouseFactory(code="A", priority=1)
    big = WarehouseFactory(code="B", priority=2)
    small = WarehouseFactory(code="C", priority=2)
    stock(product, first, 2)
    stock(product, small, 3)
    stock(product, big, 5)

    order = place(("LAMP", 8))

    taken = {a.stock_level.warehouse.code: a.quantity for a in Allocation.objects.filter(line__order=order)}
    assert taken == {"A": 2, "B": 5, "C": 1}


def test_inactive_warehouse_is_never_allocated_from():
    product = ProductFactory(sku="FAN")
    closed = WarehouseFactory(code="OLD", priority=1)
    stock(product, closed, 5)
    closed.active = False
    closed.save()

    order = place(("FAN", 2))

    assert order_line_units(order)["FAN"]["backordered"] == 2


def test_order_rejected_whole_when_a_sku_cannot_be_backordered_names_every_short_sku():
    warehouse = WarehouseFactory(code="MAIN")
    ok = ProductFactory(sku="OK")
    no_backorders = ProductFactory(sku="NOBO", backorders_allowed=False)
    ProductFactory(sku="GONE", discontinued=True)
    stock(ok, warehouse, 10)
    stock(no_backorders, warehouse, 1)
    before = (SalesOrder.objects.count(), OrderLine.objects.count(), Customer.objects.count())

    with pytest.raises(InsufficientStock) as excinfo:
        place(("OK", 1), ("NOBO", 2), ("GONE", 1), customer=Customer(email="new@example.com", name="New"))

    assert [(s.sku, s.requested, s.available) for s in excinfo.value.shortages] == [("NOBO", 2, 1), ("GONE", 1, 0)]
    assert excinfo.value.as_dict()["code"] == "insufficient_stock"
    assert excinfo.value.as_dict()["sku"] == "NOBO"
    assert (SalesOrder.objects.count(), OrderLine.objects.count(), Customer.objects.count()) == before
    assert StockLevel.objects.get(product=ok).allocated == 0


def test_discontinued_product_still_sells_what_is_in_stock():
    product = ProductFactory(sku="LAST", discontinued=True)
    stock(product, WarehouseFactory(), 3)

    order = place(("LAST", 3))

    assert order_line_units(order)["LAST"]["allocated"] == 3
    assert order.status == SalesOrder.Status.ALLOCATED


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([LineRequest("NOPE", 1)], "lines[0].sku"),
        ([LineRequest("A", 0)], "lines[0].quantity"),
        ([LineRequest("A", -3)], "lines[0].quantity"),
        ([LineRequest("A", 1), LineRequest("A", 2)], "lines[1].sku"),
        ([], "lines"),
    ],
)
def test_invalid_lines_write_nothing(lines, field):
    ProductFactory(sku="A")

    with pytest.raises(InvalidInput) as excinfo:
        order_place(customer=CustomerRequest(email="x@example.com", name="X"), lines=lines)

    assert field in excinfo.value.fields
    assert SalesOrder.objects.count() == 0
    assert Customer.objects.count() == 0


def test_existing_customer_is_reused_and_tier_updated_when_given():
    ProductFactory(sku="A")
    order_place(customer=CustomerRequest(email="Ann@Example.com", name="Ann"), lines=[LineRequest("A", 1)])
    order_place(
        customer=CustomerRequest(email="ann@example.com", name="Ann B", tier="vip"), lines=[LineRequest("A", 1)]
    )

    customer = Customer.objects.get()
    assert (customer.email, customer.name, customer.tier) == ("ann@example.com", "Ann", "vip")


def _placement_queries(warehouses: int) -> int:
    product = ProductFactory(sku=f"Q{warehouses}")
    other = ProductFactory(sku=f"R{warehouses}")
    for i in range(warehouses):
        warehouse = WarehouseFactory(code=f"Q{warehouses}-{i}", priority=i + 1)
        stock(product, warehouse, 1)
        stock(other, warehouse, 1)
    customer = _queries_customer()
    with CaptureQueriesContext(connection) as ctx:
        place((product.sku, warehouses + 2), (other.sku, warehouses), customer=customer)
    return len(ctx.captured_queries)


def _queries_customer() -> Customer:
    return Customer.objects.get_or_create(email="queries@example.com", defaults={"name": "Q"})[0]


def test_queries_per_placement_do_not_grow_with_warehouses():
    assert _placement_queries(2) == _placement_queries(12)
