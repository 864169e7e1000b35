"""seed_demo builds a consistent, believable shop through the services, once."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.db.models import F

from backorders.invariants import invariant_violations
from backorders.management.commands.seed_demo import ADMIN_PASSWORD, ADMIN_URL
from backorders.models import Backorder
from backorders.selectors import Availability, availability_for
from inventory.models import Product, PurchaseOrder, StockMovement, Warehouse
from inventory.selectors import products_with_stock
from orders.models import Customer, OrderLine, SalesOrder

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    models = (Warehouse, Product, StockMovement, Customer, SalesOrder, OrderLine, Backorder, PurchaseOrder)
    return {model.__name__: model.objects.count() for model in models}


def test_seed_demo_builds_a_consistent_shop_with_every_availability_state():
    output = seed()

    assert invariant_violations() == []
    products = list(products_with_stock(Product.objects.all()))
    states = {availability_for(product=p, available=p.total_available) for p in products}
    assert states == set(Availability.values)
    assert len(products) == 50
    assert any(p.discontinued for p in products)
    assert list(Warehouse.objects.values_list("priority", flat=True)) == [1, 2, 3]
    assert set(Customer.objects.values_list("tier", flat=True)) == set(Customer.Tier.values)
    waiting = Backorder.objects.filter(status=Backorder.Status.WAITING)
    assert waiting.count() >= 20
    assert waiting.exclude(eta_source="").exists() and waiting.filter(eta_source="purchase_order").exists()
    orders = SalesOrder.objects.all()
    assert orders.count() == 60
    assert orders.filter(ship_complete=True).exists()
    assert orders.filter(status=SalesOrder.Status.SHIPPED).exists()
    assert orders.filter(status=SalesOrder.Status.CANCELLED).exists()
    partial = OrderLine.objects.filter(backordered__gt=0).filter(allocated__gt=0) | OrderLine.objects.filter(
        backordered__gt=0, shipped__gt=0
    )
    assert partial.count() >= 3
    assert not OrderLine.objects.exclude(
        quantity=F("allocated") + F("backordered") + F("shipped") + F("cancelled")
    ).exists()
    assert StockMovement.objects.filter(reason="Opening stock count").exists()
    placed = sorted(orders.values_list("placed_at", flat=True))
    assert (placed[-1] - placed[0]).days >= 30
    assert authenticate(username="admin", password=ADMIN_PASSWORD) is not None
    assert ADMIN_URL in output and f"admin / {ADMIN_PASSWORD}" in output
    assert "Waiting backorders:" in output


def test_seed_demo_twice_changes_nothing_and_keeps_the_admin_password():
    seed()
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-the-user")
    admin.save()
    before = counts()

    output = seed()

    assert counts() == before
    assert "already seeded" in output
    assert ADMIN_URL in output
    assert authenticate(username="admin", password="changed-by-the-user") is not None
    assert invariant_violations() == []


def test_seed_demo_leaves_a_shop_that_is_not_the_demo_alone():
    Product.objects.create(sku="THEIRS", name="Somebody else's product")

    output = seed()

    assert "nothing was changed" in output
    assert list(Product.objects.values_list("sku", flat=True)) == ["THEIRS"]
    assert not SalesOrder.objects.exists()
