"""Change history (django-simple-history) on products, purchase orders and backorders in the admin: who
changed what and when, read-only (no revert)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder
from inventory.models import Product, PurchaseOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from .factories import place
from .test_admin import action

pytestmark = pytest.mark.django_db


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def test_a_product_change_in_the_admin_is_in_its_history_with_who_made_it(admin_client):
    product = ProductFactory(sku="MUG", name="Mug", lead_time_days=10)
    url = reverse("admin:inventory_product_change", args=[product.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "substitutes"}
    data.update(
        {
            "name": "Camp mug",
            "lead_time_days": 12,
            "stock_levels-TOTAL_FORMS": 0,
            "stock_levels-INITIAL_FORMS": 0,
        }
    )

    assert admin_client.post(url, data).status_code == 302
    history = admin_client.get(reverse("admin:inventory_product_history", args=[product.pk]))

    record = Product.history.filter(sku="MUG").latest("history_date")
    assert (record.name, record.lead_time_days, record.history_user.username) == ("Camp mug", 12, "admin")
    content = history.content.decode()
    assert history.status_code == 200
    assert "Camp mug" in content and "lead time days" in content.lower()


def test_receiving_a_purchase_order_is_in_its_history(admin_client, main):
    ProductFactory(sku="MUG")
    po = purchase_order(main, ("MUG", 4), number="PO-1")

    action(admin_client, "admin:inventory_purchaseorder_changelist", "receive_outstanding", [po], confirm=True)
    page = admin_client.get(reverse("admin:inventory_purchaseorder_history", args=[po.pk]))

    statuses = list(
        PurchaseOrder.history.filter(number="PO-1")
        .order_by("history_date")
        .values_list("status", "history_user__username")
    )
    assert statuses == [("ordered", None), ("received", "admin")]
    assert page.status_code == 200 and "ordered" in page.content.decode() and "received" in page.content.decode()


def test_a_backorder_history_shows_its_eta_changes_timeline_and_emails(admin_client, main):
    ProductFactory(sku="MUG", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1), number="SO-1"))
    new_eta = timezone.localdate() + timedelta(days=30)
    action(
        admin_client,
        "admin:backorders_backorder_changelist",
        "set_eta",
        [backorder],
        confirm=True,
        eta=new_eta.isoformat(),
        reason="Supplier delay",
    )

    page = admin_client.get(reverse("admin:backorders_backorder_history", args=[backorder.pk]))

    content = page.content.decode()
    assert page.status_code == 200
    assert "ETA history" in content and "Supplier delay" in content
    assert "Compliance timeline" in content
    assert "Backorder created" in content  # the email about the line's order
    assert "?order=SO-1" in content


def test_history_cannot_revert_a_product_to_an_old_version(admin_client):
    product = ProductFactory(sku="MUG", name="Mug")
    product.name = "Changed"
    product.save()
    first = Product.history.filter(sku="MUG").earliest("history_date")
    url = reverse("admin:inventory_product_simple_history", args=[product.pk, first.history_id])

    page = admin_client.get(url)
    response = admin_client.post(url, {"sku": "MUG", "name": "Mug"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    product.refresh_from_db()
    assert product.name == "Changed"
