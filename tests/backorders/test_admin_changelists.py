"""Changelists stay fast on big tables: a page costs the same number of queries with 2 rows or 12, with the
filters the dashboard links to, and no full count of the table is run."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder, ComplianceClock, EtaChange
from backorders.roles import CUSTOMER_SERVICE
from inventory.models import Product, PurchaseOrder, StockLevel, StockMovement
from notifications.models import Notification
from orders.models import OrderLine, SalesOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .factories import place, waiting_queue
from .test_admin_roles import role_user

pytestmark = pytest.mark.django_db

BIG_TABLES = [SalesOrder, OrderLine, Backorder, Notification, StockLevel, StockMovement, Product, PurchaseOrder]


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def grow(main, start: int, count: int) -> None:
    """`count` more products, each with stock, an order, a waiting line, a clock, a PO and a few emails."""
    today = timezone.localdate()
    for i in range(start, start + count):
        product = ProductFactory(sku=f"P{i:03d}", lead_time_days=10)
        stock(product, main, 1)
        place((product.sku, 1))
        [order] = waiting_queue(product, 1)
        ComplianceClock.objects.create(
            line=order.lines.get(), profile="us_ftc", ship_by=today + timedelta(days=i % 3), refund_due_by=today
        )
        purchase_order(main, (product.sku, 2), days=i % 2)
        Backorder.objects.filter(line__order=order).update(eta=today + timedelta(days=3))


CHANGELISTS = [
    ("admin:orders_salesorder_changelist", ""),
    ("admin:orders_salesorder_changelist", "?status__exact=allocated"),
    ("admin:orders_orderline_changelist", ""),
    ("admin:backorders_backorder_changelist", ""),
    ("admin:backorders_backorder_changelist", "?overdue=yes"),
    ("admin:backorders_backorder_changelist", "?ship_by=passed&age=0-7"),
    ("admin:backorders_backorder_changelist", "?status=all&sku=P001"),
    ("admin:notifications_notification_changelist", "?status__exact=pending"),
    ("admin:inventory_stocklevel_changelist", ""),
    ("admin:inventory_stockmovement_changelist", ""),
    ("admin:inventory_product_changelist", ""),
    ("admin:inventory_product_changelist", "?rolling=yes"),
    ("admin:inventory_purchaseorder_changelist", "?arrival=due"),
    ("admin:backorders_complianceclock_changelist", "?notice=due"),
    ("admin:backorders_complianceclock_changelist", "?deadline=week&refund=overdue"),
    ("admin:backorders_etachange_changelist", ""),
    # Search and the filters made index-friendly for a million rows (test_admin_filters_at_scale.py)
    ("admin:orders_salesorder_changelist", "?q=so-"),
    ("admin:orders_salesorder_changelist", "?customer__tier__exact=standard"),
    ("admin:backorders_backorder_changelist", "?overdue=no&age=0-7"),
    ("admin:backorders_backorder_changelist", "?age=8-14"),
    ("admin:backorders_backorder_changelist", "?q=P0"),
    ("admin:backorders_backorder_changelist", "?line__order__customer__tier__exact=standard"),
    ("admin:backorders_complianceevent_changelist", "?kind__exact=clock_started&channel__exact=system"),
    ("admin:orders_shipment_changelist", "?shipped_at__gte=2020-01-01+00:00:00%2B00:00"),
    ("admin:backorders_complianceclock_changelist", "?profile=us_ftc"),
]


@pytest.mark.parametrize("role", ["superuser", CUSTOMER_SERVICE])
def test_every_big_changelist_costs_the_same_queries_with_2_or_12_rows(client, main, role):
    client.force_login(admin_user() if role == "superuser" else role_user(role))
    urls = [reverse(name) + query for name, query in CHANGELISTS]
    urls = [url for url in urls if client.get(url).status_code != 403]  # customer service: no stock ledger
    grow(main, 0, 2)
    few = {url: queries(client, url) for url in urls}

    grow(main, 2, 10)

    many = {url: queries(client, url) for url in urls}
    assert many == few


def admin_user():
    from django.contrib.auth.models import User

    return User.objects.create_superuser("boss", "boss@example.com", "pw")


def test_big_changelists_never_count_the_whole_table():
    for model in BIG_TABLES:
        assert admin.site._registry[model].show_full_result_count is False, model.__name__


def test_dashboard_filters_are_backed_by_indexes():
    """The filters the dashboard links to use indexed columns (the partial queue index, status/eta,
    clock state/ship_by, state/consent_deadline, refund_due_by, PO status/expected_date)."""
    indexed = {
        tuple(index.fields) for model in (Backorder, ComplianceClock, PurchaseOrder) for index in model._meta.indexes
    }
    assert ("status", "eta") in indexed
    assert ("state", "ship_by") in indexed
    assert ("state", "consent_deadline") in indexed
    assert ("refund_due_by",) in indexed
    assert ("status", "expected_date") in indexed
    assert EtaChange._meta.get_field("created_at").db_index
