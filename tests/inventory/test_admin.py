"""Inventory in the admin: pages render, stock is read-only, the ledger is append-only, and the stock
adjustment form writes one ledger row through the service and fills the queue (or writes nothing)."""

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backorders.models import Backorder
from inventory.models import Product, PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement, Supplier, Warehouse

from ..backorders.factories import place
from .factories import ProductFactory, WarehouseFactory, purchase_order, stock

pytestmark = pytest.mark.django_db

ADJUST_URL = "admin:inventory_stocklevel_adjust"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def adjust(client, product, warehouse, delta, reason="Cycle count", **extra):
    data = {"product": product.pk, "warehouse": warehouse.pk, "delta": delta, "reason": reason, **extra}
    return client.post(reverse(ADJUST_URL), data)


def test_every_inventory_changelist_and_change_page_renders(admin_client):
    warehouse = WarehouseFactory(code="MAIN")
    product = ProductFactory(sku="MUG", supplier=Supplier.objects.create(name="Acme", lead_time_days=9))
    level = stock(product, warehouse, 5)
    po = purchase_order(warehouse, ("MUG", 3))
    objects = {
        Warehouse: warehouse,
        Product: product,
        StockLevel: level,
        StockMovement: level.movements.get(),
        Supplier: product.supplier,
        PurchaseOrder: po,
        PurchaseOrderLine: po.lines.get(),
    }

    for model, obj in objects.items():
        name = model._meta.model_name
        assert admin_client.get(reverse(f"admin:inventory_{name}_changelist")).status_code == 200, name
        assert admin_client.get(reverse(f"admin:inventory_{name}_change", args=[obj.pk])).status_code == 200, name
    assert admin_client.get(reverse("admin:inventory_product_add")).status_code == 200


def test_product_page_shows_stock_per_warehouse_read_only_and_an_adjust_stock_button(admin_client):
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 7)
    stock(product, WarehouseFactory(code="EAST", priority=2), 3)
    place(("MUG", 2))

    response = admin_client.get(reverse("admin:inventory_product_change", args=[product.pk]))

    content = response.content.decode()
    assert "stock per warehouse" in content.lower()
    assert 'name="stock_levels-0-on_hand"' not in content  # read-only, not an input
    assert 'name="on_hand"' not in content
    assert f"{reverse(ADJUST_URL)}?product={product.pk}" in content
    inline = response.context["inline_admin_formsets"][0]
    assert [form.original.warehouse.code for form in inline] == ["MAIN", "EAST"]
    assert [(form.original.on_hand, form.original.allocated) for form in inline] == [(7, 2), (3, 0)]


def test_product_changelist_shows_an_availability_badge_per_state(admin_client):
    warehouse = WarehouseFactory(code="MAIN")
    stock(ProductFactory(sku="PLENTY", reorder_point=5), warehouse, 50)
    stock(ProductFactory(sku="FEW", reorder_point=5), warehouse, 3)
    ProductFactory(sku="WAIT")
    ProductFactory(sku="NOPE", backorders_allowed=False)

    response = admin_client.get(reverse("admin:inventory_product_changelist"))

    content = response.content.decode()
    for label in ("In stock", "Low stock", "Backorder", "Out of stock"):
        assert f">{label}</span>" in content


def test_product_changelist_query_count_does_not_grow_with_rows(admin_client):
    warehouse = WarehouseFactory(code="MAIN")

    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse("admin:inventory_product_changelist")).status_code == 200
        return len(queries)

    for i in range(5):
        stock(ProductFactory(sku=f"A{i}"), warehouse, i + 1)
        ProductFactory(sku=f"B{i}")  # backorder state: has a next ETA
    few = changelist_queries()
    for i in range(5, 30):
        stock(ProductFactory(sku=f"A{i}"), warehouse, i + 1)
        ProductFactory(sku=f"B{i}")

    assert changelist_queries() == few


def test_stock_adjustment_writes_one_ledger_row_and_fills_the_waiting_line(admin_client, assert_invariants):
    product = ProductFactory(sku="MUG")
    main = WarehouseFactory(code="MAIN")
    stock(product, main, 2)
    first = place(("MUG", 5))  # 2 allocated, 3 waiting
    second = place(("MUG", 4))  # 4 waiting
    movements_before = StockMovement.objects.count()

    response = adjust(admin_client, product, main, 5, reason="Found in returns cage")

    assert response.status_code == 302
    assert response.url == reverse("admin:inventory_product_change", args=[product.pk])
    assert StockMovement.objects.count() == movements_before + 1
    movement = StockMovement.objects.latest("id")
    assert (movement.quantity, movement.reason, movement.source, movement.user.username) == (
        5,
        "Found in returns cage",
        "admin",
        "admin",
    )
    assert StockLevel.objects.filter(product=product).values_list("on_hand", "allocated").get() == (7, 7)
    assert Backorder.objects.get(line__order=first).status == Backorder.Status.FILLED
    assert Backorder.objects.get(line__order=second).quantity == 2
    assert messages_of(response) == ["+5 MUG at MAIN: on hand 7; 1 waiting line filled, 1 partly."]
    assert_invariants()


def test_stock_adjustment_below_what_is_allocated_shows_the_error_and_writes_nothing(admin_client):
    product = ProductFactory(sku="MUG")
    main = WarehouseFactory(code="MAIN")
    stock(product, main, 5)
    place(("MUG", 4))
    movements_before = StockMovement.objects.count()

    response = adjust(admin_client, product, main, -2, reason="Damaged")

    assert response.status_code == 200
    assert "on hand cannot go below 4" in " ".join(response.context["form"].non_field_errors())
    assert StockMovement.objects.count() == movements_before
    assert StockLevel.objects.filter(product=product).values_list("on_hand", "allocated").get() == (5, 4)


def test_stock_adjustment_of_zero_is_refused_on_the_change_field_and_writes_nothing(admin_client):
    product = ProductFactory(sku="MUG")
    main = WarehouseFactory(code="MAIN")

    response = adjust(admin_client, product, main, 0)

    assert response.status_code == 200
    assert response.context["form"].errors["delta"] == ["Must not be 0."]
    assert not StockMovement.objects.exists()
    assert not StockLevel.objects.exists()


def test_stock_adjustment_needs_a_reason(admin_client):
    product = ProductFactory(sku="MUG")

    response = adjust(admin_client, product, WarehouseFactory(code="MAIN"), 3, reason="")

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert not StockMovement.objects.exists()


def test_stock_adjustment_form_prefills_the_product_and_shows_its_stock(admin_client):
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN"), 4)

    response = admin_client.get(reverse(ADJUST_URL), {"product": product.pk})

    assert response.status_code == 200
    assert response.context["form"].initial == {"product": str(product.pk)}
    assert [level.on_hand for level in response.context["levels"]] == [4]


def test_stock_adjustment_needs_the_add_stock_movement_permission(client):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_stocklevel"))
    client.force_login(user)

    assert client.get(reverse(ADJUST_URL)).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="add_stockmovement"))
    user = User.objects.get(pk=user.pk)  # drop the permission cache
    client.force_login(user)
    assert client.get(reverse(ADJUST_URL)).status_code == 200


def test_stock_levels_and_the_ledger_cannot_be_added_changed_or_deleted_in_the_admin(admin_client):
    level = stock(ProductFactory(sku="MUG"), WarehouseFactory(code="MAIN"), 5)
    movement = level.movements.get()

    for name, obj in (("stocklevel", level), ("stockmovement", movement)):
        assert admin_client.get(reverse(f"admin:inventory_{name}_add")).status_code == 403
        assert admin_client.post(reverse(f"admin:inventory_{name}_change", args=[obj.pk]), {}).status_code == 403
        assert admin_client.post(reverse(f"admin:inventory_{name}_delete", args=[obj.pk]), {}).status_code == 403
    assert StockLevel.objects.get().on_hand == 5
    assert StockMovement.objects.count() == 1


def test_stock_level_changelist_links_to_the_adjustment_form(admin_client):
    stock(ProductFactory(sku="MUG"), WarehouseFactory(code="MAIN"), 5)

    response = admin_client.get(reverse("admin:inventory_stocklevel_changelist"))

    assert reverse(ADJUST_URL) in response.content.decode()


def test_ledger_link_from_a_product_lists_only_its_movements(admin_client):
    warehouse = WarehouseFactory(code="MAIN")
    stock(ProductFactory(sku="MUG"), warehouse, 5)
    stock(ProductFactory(sku="MUG-2"), warehouse, 5)

    response = admin_client.get(reverse("admin:inventory_stockmovement_changelist"), {"sku": "MUG"})

    assert [m.stock_level.product.sku for m in response.context["cl"].result_list] == ["MUG"]
