"""Orders in the admin: pages render, orders are read-only except for the actions, and the actions
Allocate stock / Ship allocated / Cancel call the services and report counts."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backorders.models import Backorder
from backorders.services.cancellation import order_line_units
from inventory.models import StockLevel, StockMovement
from orders.models import Allocation, Customer, OrderLine, SalesOrder, Shipment, ShipmentLine
from orders.services import order_ship

from ..backorders.factories import place
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_salesorder_changelist"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client, action: str, orders, **data):
    post = {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [o.pk for o in orders], **data}
    return client.post(reverse(CHANGELIST), post)


def confirm_action(client, action: str, orders, **data):
    post = {"action": action, "post": "yes", ACTION_CHECKBOX_NAME: [o.pk for o in orders], **data}
    return client.post(reverse(CHANGELIST), post)


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def test_every_orders_changelist_and_change_page_renders(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 5)
    order = place(("MUG", 3), customer=CustomerFactory(email="ann@example.com"))
    shipment = order_ship(order=order)
    waiting = place(("MUG", 4))
    objects = {
        Customer: order.customer,
        SalesOrder: waiting,
        OrderLine: waiting.lines.get(),
        Allocation: Allocation.objects.get(line__order=waiting),
        Shipment: shipment,
        ShipmentLine: shipment.lines.get(),
    }

    for model, obj in objects.items():
        name = model._meta.model_name
        assert admin_client.get(reverse(f"admin:orders_{name}_changelist")).status_code == 200, name
        assert admin_client.get(reverse(f"admin:orders_{name}_change", args=[obj.pk])).status_code == 200, name


def test_order_page_shows_lines_with_backorder_and_is_read_only(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 6)
    order = place(("MUG", 10))
    url = reverse("admin:orders_salesorder_change", args=[order.pk])

    response = admin_client.get(url)

    content = response.content.decode()
    assert "10 ordered = 6 allocated + 4 backordered + 0 shipped + 0 cancelled" in content
    assert "Waiting: 4 of 4" in content
    assert "6 × MUG from MAIN" in content
    assert 'name="ship_complete"' not in content  # no editable fields
    for action in ("Allocate stock", "Ship allocated", "Cancel"):
        assert f">{action}</button>" in content
    assert admin_client.post(url, {"ship_complete": "on"}).status_code == 403
    assert admin_client.get(reverse("admin:orders_salesorder_add")).status_code == 403
    assert order_line_units(order)["MUG"] == {
        "quantity": 10,
        "allocated": 6,
        "backordered": 4,
        "shipped": 0,
        "cancelled": 0,
    }


def test_allocate_stock_allocates_waiting_lines_and_reports_counts(admin_client, main, assert_invariants):
    mug = ProductFactory(sku="MUG")
    stock(ProductFactory(sku="PEN"), main, 5)
    waiting = place(("MUG", 4))
    nothing_waiting = place(("PEN", 1))
    stock(mug, main, 3)  # counted in without a fill: the action serves the order directly

    response = run_action(admin_client, "allocate_stock", [waiting, nothing_waiting])

    assert response.status_code == 302
    assert order_line_units(waiting)["MUG"] == {
        "quantity": 4,
        "allocated": 3,
        "backordered": 1,
        "shipped": 0,
        "cancelled": 0,
    }
    assert Backorder.objects.get(line__order=waiting).quantity == 1
    assert StockLevel.objects.get(product=mug).allocated == 3
    assert messages_of(response) == ["2 orders: 3 units allocated (1 line partly filled); 1 order had nothing waiting."]
    assert_invariants()


def test_allocate_stock_reports_orders_still_waiting_for_stock(admin_client, main):
    ProductFactory(sku="MUG")
    order = place(("MUG", 2), number="SO-1")

    response = run_action(admin_client, "allocate_stock", [order])

    assert messages_of(response) == ["1 order: 0 units allocated; 1 order still waits for stock (SO-1)."]
    assert order_line_units(order)["MUG"]["backordered"] == 2


def test_ship_allocated_ships_and_reports_held_and_empty_orders(admin_client, main, assert_invariants):
    mug = ProductFactory(sku="MUG")
    ProductFactory(sku="LAMP")
    stock(mug, main, 5)
    ready = place(("MUG", 2), number="SO-READY")
    held = place(("MUG", 2), ("LAMP", 1), ship_complete=True, number="SO-HELD")
    empty = place(("LAMP", 3), number="SO-EMPTY")
    ledger_before = StockMovement.objects.count()

    response = run_action(admin_client, "ship_allocated", [ready, held, empty])

    assert response.status_code == 302
    assert order_line_units(ready)["MUG"] == {
        "quantity": 2,
        "allocated": 0,
        "backordered": 0,
        "shipped": 2,
        "cancelled": 0,
    }
    assert order_line_units(held)["MUG"]["shipped"] == 0
    assert order_line_units(held)["MUG"]["allocated"] == 2
    assert StockLevel.objects.filter(product=mug).values_list("on_hand", "allocated").get() == (3, 2)
    assert StockMovement.objects.count() == ledger_before + 1
    assert SalesOrder.objects.get(pk=ready.pk).status == SalesOrder.Status.SHIPPED
    assert messages_of(response) == [
        "1 order shipped: 2 units in 1 shipment.",
        "1 order held: it ships complete and still waits for stock (SO-HELD).",
        "1 order had nothing allocated to ship (SO-EMPTY).",
    ]
    assert_invariants()


def test_cancel_asks_for_confirmation_listing_what_will_be_cancelled(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 6)
    order = place(("MUG", 10), number="SO-1")

    response = run_action(admin_client, "cancel_orders", [order])

    assert response.status_code == 200
    content = response.content.decode()
    assert "SO-1" in content and "MUG" in content
    assert 'name="post" value="yes"' in content
    assert order_line_units(order)["MUG"]["cancelled"] == 0  # nothing happened yet


def test_cancel_releases_stock_to_the_next_waiting_order_and_reports(admin_client, main, assert_invariants):
    mug = ProductFactory(sku="MUG")
    stock(mug, main, 6)
    first = place(("MUG", 10), number="SO-1")  # 6 allocated, 4 waiting
    second = place(("MUG", 3), number="SO-2")  # 3 waiting

    response = confirm_action(admin_client, "cancel_orders", [first], scope="all")

    assert response.status_code == 302
    assert order_line_units(first)["MUG"] == {
        "quantity": 10,
        "allocated": 0,
        "backordered": 0,
        "shipped": 0,
        "cancelled": 10,
    }
    assert order_line_units(second)["MUG"] == {
        "quantity": 3,
        "allocated": 3,
        "backordered": 0,
        "shipped": 0,
        "cancelled": 0,
    }
    assert SalesOrder.objects.get(pk=first.pk).status == SalesOrder.Status.CANCELLED
    assert StockLevel.objects.get(product=mug).allocated == 3
    assert messages_of(response) == [
        "1 order cancelled: 10 units (6 released from allocations, 1 backorder closed); "
        "the released stock went to other orders: 1 waiting line filled."
    ]
    assert_invariants()


def test_cancel_only_the_backordered_units_keeps_what_is_allocated(admin_client, main, assert_invariants):
    stock(ProductFactory(sku="MUG"), main, 6)
    order = place(("MUG", 10))

    confirm_action(admin_client, "cancel_orders", [order], scope="waiting")

    assert order_line_units(order)["MUG"] == {
        "quantity": 10,
        "allocated": 6,
        "backordered": 0,
        "shipped": 0,
        "cancelled": 4,
    }
    assert Backorder.objects.get(line__order=order).status == Backorder.Status.CANCELLED
    assert SalesOrder.objects.get(pk=order.pk).status == SalesOrder.Status.ALLOCATED
    assert_invariants()


def test_cancel_reports_orders_with_nothing_left_to_cancel(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 2)
    order = place(("MUG", 2), number="SO-1")
    order_ship(order=order)

    response = confirm_action(admin_client, "cancel_orders", [order], scope="all")

    assert messages_of(response) == ["1 order had nothing left to cancel (SO-1)."]
    assert order_line_units(order)["MUG"]["shipped"] == 2


def test_an_action_run_from_the_order_page_returns_to_it(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 2)
    order = place(("MUG", 2))
    page = reverse("admin:orders_salesorder_change", args=[order.pk])

    response = run_action(admin_client, "ship_allocated", [order], next=page)

    assert response.status_code == 302
    assert response.url == page
    assert order_line_units(order)["MUG"]["shipped"] == 2


def test_actions_need_the_change_permission(client, main):
    stock(ProductFactory(sku="MUG"), main, 2)
    order = place(("MUG", 2))
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_salesorder"))
    client.force_login(viewer)

    changelist = client.get(reverse(CHANGELIST))
    response = run_action(client, "ship_allocated", [order])

    assert changelist.status_code == 200
    assert changelist.context["action_form"] is None  # no actions offered without the change permission
    assert response.status_code in (200, 302)
    assert order_line_units(order)["MUG"]["shipped"] == 0


def test_orders_changelist_query_count_does_not_grow_with_rows(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 100)
    ProductFactory(sku="LAMP")

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(CHANGELIST)).status_code == 200
        return len(queries)

    for _ in range(5):
        place(("MUG", 1), ("LAMP", 1))
    few = changelist_queries()
    for _ in range(25):
        place(("MUG", 1), ("LAMP", 1))

    assert changelist_queries() == few
