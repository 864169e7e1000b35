"""The role journeys in a real browser (headless Chromium) against a live server:

- a warehouse user receives a purchase order from the admin and sees the waiting backorders filled;
- a customer-service user bulk-edits ETAs and sees the eta_changed emails queued (pending, quiet period);
- a customer opens the status link from an email and cancels a backordered line on the confirmation page;
- a customer-service user cannot change stock or the policy (403).
"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder, BackorderPolicy
from backorders.roles import CUSTOMER_SERVICE, WAREHOUSE
from backorders.status_links import status_token
from inventory.models import PurchaseOrder
from notifications.models import Notification
from orders.models import OrderLine

from ..backorders.factories import place
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .conftest import run_action, submit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def message_texts(page) -> list[str]:
    return [text.strip() for text in page.locator("ul.messagelist li").all_inner_texts()]


def test_warehouse_user_receives_a_purchase_order_and_sees_the_backorders_filled(page, login, staff, main):
    ProductFactory(sku="MUG", name="Camp mug")
    place(("MUG", 2), number="SO-1")
    place(("MUG", 3), number="SO-2")
    po = purchase_order(main, ("MUG", 6), number="PO-1")
    staff(WAREHOUSE, "wes")
    login("wes")

    run_action(page, "/admin/inventory/purchaseorder/", "receive_outstanding", pks=[po.pk])
    quantity = page.locator(f"input[name='receive-{po.lines.get().pk}']")
    quantity.fill("4")
    submit(page, "button[name=preview]")
    preview = page.locator(".preview").inner_text()
    assert "Fills SO-1" in preview and "Fills SO-2" in preview and "1 still waiting" in preview
    submit(page, "button[name=post]")

    assert message_texts(page) == ["PO-1: received 4 units; 1 waiting line(s) filled, 1 partly (4 units)."]
    page.goto("/admin/backorders/backorder/?status=filled")
    assert page.locator("#result_list tbody tr").all_inner_texts()[0].split()[:2] == ["MUG", "SO-1"]
    page.goto("/admin/backorders/backorder/")
    waiting = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(waiting) == 1 and "SO-2" in waiting[0] and "1 of 3" in waiting[0]
    assert PurchaseOrder.objects.get(pk=po.pk).status == PurchaseOrder.Status.PARTIALLY_RECEIVED


def test_customer_service_bulk_edits_etas_and_sees_the_emails_queued(page, login, staff, main):
    ProductFactory(sku="LAMP", lead_time_days=10)
    for number in ("SO-1", "SO-2", "SO-3"):
        place(("LAMP", 1), number=number)
    new_eta = timezone.localdate() + timedelta(days=45)
    staff(CUSTOMER_SERVICE, "sam")
    login("sam")

    run_action(page, "/admin/backorders/backorder/", "set_eta")
    page.fill("#id_eta", new_eta.isoformat())
    page.fill("#id_reason", "Supplier moved the delivery")
    submit(page, "input[type=submit][value='Save ETA']")

    assert message_texts(page) == [f"ETA set to {new_eta} on 3 waiting lines."]
    page.goto("/admin/notifications/notification/?kind__exact=eta_changed&status__exact=pending")
    rows = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(rows) == 3
    assert all("ETA changed" in row and "Pending" in row for row in rows)
    assert Notification.objects.filter(kind="eta_changed", status="pending").count() == 3


def test_customer_cancels_a_backordered_line_from_the_status_link(page, main):
    stock(ProductFactory(sku="TENT", name="Dome tent", lead_time_days=10), main, 1)
    order = place(("TENT", 3), number="SO-7")  # 1 allocated, 2 waiting

    page.goto(reverse("status-page", args=[status_token(order)]))
    assert "Order SO-7" in page.inner_text("h1")
    submit(page, "text=Cancel backordered items")
    assert "Cancel your backordered items?" in page.inner_text("h1")
    submit(page, "button:has-text('Cancel backordered items')")

    assert "2 backordered items cancelled" in page.inner_text("body")
    line = OrderLine.objects.get(order=order)
    assert (line.allocated, line.backordered, line.cancelled) == (1, 0, 2)
    assert Backorder.objects.get(line=line).status == Backorder.Status.CANCELLED


def test_customer_service_gets_403_on_stock_adjustment_and_policy_changes(page, login, staff, main):
    staff(CUSTOMER_SERVICE, "sam")
    login("sam")
    policy = BackorderPolicy.ensure()
    policy_url = reverse("admin:backorders_backorderpolicy_change", args=[policy.pk])

    adjust = page.goto(reverse("admin:inventory_stocklevel_adjust"))
    assert adjust.status == 403
    assert page.goto(policy_url).status == 200  # the policy is shown read-only: no Save button
    assert page.locator("input[name=_save]").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    change = page.request.post(
        policy_url,
        form={"csrfmiddlewaretoken": token, "fill_strategy": "tier", "handling_days": "5"},
        headers={"Referer": page.url},
    )

    assert change.status == 403
    policy.refresh_from_db()
    assert (policy.fill_strategy, policy.handling_days) == ("fifo", 1)
