"""The admin index dashboard: the numbers, the changelists they link to (which must list exactly as many
rows), what each role sees, and a constant number of queries however many rows there are."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backorders.dashboard import dashboard_for
from backorders.models import Backorder, BackorderPolicy, ComplianceClock
from backorders.roles import CUSTOMER_SERVICE, WAREHOUSE
from inventory.models import PurchaseOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .factories import place, waiting_queue
from .test_admin_roles import role_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def clock_for(order, **fields) -> ComplianceClock:
    line = order.lines.get()
    return ComplianceClock.objects.create(line=line, profile="us_ftc", **fields)


@pytest.fixture
def shop(main):
    """Waiting lines of every age, one past its ship-by date, a rolling backorder, and compliance clocks."""
    today = timezone.localdate()
    for sku in ("TENT", "LAMP", "BOOT"):
        ProductFactory(sku=sku, lead_time_days=10)
    fresh = place(("TENT", 2), placed_at=days_ago(1))
    place(("TENT", 1), placed_at=days_ago(10))
    place(("LAMP", 3), placed_at=days_ago(20))
    old = place(("BOOT", 1), placed_at=days_ago(45))  # past the default 30-day ship-by; BOOT is rolling
    promised = place(("LAMP", 1), placed_at=days_ago(2), ship_by=today + timedelta(days=1))
    # Clocks: a first notice due (T within the notice lead days), a consent deadline in 3 days, a refund overdue.
    clock_for(promised, ship_by=today + timedelta(days=1))
    clock_for(
        fresh,
        ship_by=today + timedelta(days=29),
        notices_sent=1,
        revised_date=today + timedelta(days=40),
        consent_deadline=today + timedelta(days=3),
    )
    refunded = place(("TENT", 1), placed_at=days_ago(12))
    clock_for(
        refunded,
        ship_by=today + timedelta(days=18),
        state=ComplianceClock.State.CANCELLED,
        cancelled_on=today - timedelta(days=12),
        refund_due_by=today - timedelta(days=2),
    )
    stock(ProductFactory(sku="MUG"), main, 5)
    place(("MUG", 2))  # allocated: ready to ship
    purchase_order(main, ("LAMP", 1), days=0)  # due in today
    return {"old": old}


def card_values(html: str) -> dict[str, tuple[int, str]]:
    """{label: (number, link)} of the dashboard's cards."""
    cards = re.findall(
        r'<a class="dash-card[^"]*" href="([^"]+)">\s*<span class="dash-value">(\d+)</span>\s*'
        r'<span class="dash-label">([^<]+)</span>',
        html,
    )
    return {label: (int(value), url.replace("&amp;", "&")) for url, value, label in cards}


def listed(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["cl"].result_count


def test_every_dashboard_number_matches_the_changelist_it_links_to(admin_client, shop):
    response = admin_client.get(reverse("admin:index"))
    cards = card_values(response.content.decode())

    assert cards["Open backorders"][0] == 6
    assert cards["Units waiting"][0] == 9
    assert cards["Past their ship-by date"][0] == 1
    assert cards["Rolling backorders"][0] == 1
    assert cards["Delay notices due"][0] == 1
    assert cards["Consent deadlines this week"][0] == 1
    assert cards["Refunds overdue"][0] == 1
    assert cards["Orders ready to ship"][0] == 1
    assert cards["Purchase orders due in"][0] == 1
    for label, (number, url) in cards.items():
        if label in ("Units waiting", "Emails waiting to be sent"):
            continue  # units are a sum over the same lines; emails are checked below
        assert listed(admin_client, url) == number, label
    assert listed(admin_client, cards["Emails waiting to be sent"][1]) == cards["Emails waiting to be sent"][0]


def test_aging_chart_is_server_rendered_svg_with_a_linked_bar_per_bucket(admin_client, shop):
    html = admin_client.get(reverse("admin:index")).content.decode()
    board = dashboard_for(User.objects.get(username="admin"))

    assert "<svg" in html and "<script" not in html.split('id="dashboard"')[1].split("</svg>")[0]
    bars = {bar.label: bar.value for bar in board.aging.bars}
    assert bars == {"0-7 days": 2, "8-14 days": 2, "15-30 days": 1, "30+ days": 1}
    url = reverse("admin:backorders_backorder_changelist")
    for bar in board.aging.bars:
        assert f'href="{bar.url}"' in html.replace("&amp;", "&")
        assert listed(admin_client, bar.url) == bar.value
    assert f"{url}?age=30%2B" in [bar.url for bar in board.aging.bars]


def test_top_products_and_rolling_backorders_link_to_their_lines(admin_client, shop):
    html = admin_client.get(reverse("admin:index")).content.decode()
    url = reverse("admin:backorders_backorder_changelist")

    assert f'href="{url}?sku=LAMP"' in html
    assert [row.sku for row in dashboard_for(role_user(CUSTOMER_SERVICE)).top_products] == ["LAMP", "TENT", "BOOT"]
    assert listed(admin_client, f"{url}?sku=LAMP") == 2
    rolling = admin_client.get(reverse("admin:inventory_product_changelist"), {"rolling": "yes"})
    assert [p.sku for p in rolling.context["cl"].result_list] == ["BOOT"]


def test_rolling_backorder_days_come_from_the_policy(admin_client, shop):
    policy = BackorderPolicy.current()
    policy.rolling_backorder_days = 15
    policy.save()

    cards = card_values(admin_client.get(reverse("admin:index")).content.decode())

    assert cards["Rolling backorders"][0] == 2  # BOOT (45 days) and LAMP (20 days)


def test_each_role_sees_only_the_panels_it_can_open(client, shop):
    warehouse, service = role_user(WAREHOUSE), role_user(CUSTOMER_SERVICE)

    client.force_login(warehouse)
    seen_by_warehouse = card_values(client.get(reverse("admin:index")).content.decode())
    client.force_login(service)
    seen_by_service = card_values(client.get(reverse("admin:index")).content.decode())

    assert "Orders ready to ship" in seen_by_warehouse and "Open backorders" in seen_by_warehouse
    assert "Refunds overdue" not in seen_by_warehouse  # no compliance clocks for the warehouse
    assert "Refunds overdue" in seen_by_service and "Emails waiting to be sent" in seen_by_service
    assert "Orders ready to ship" not in seen_by_service  # customer service does not ship


def test_dashboard_costs_a_constant_number_of_queries(admin_client, main):
    product = ProductFactory(sku="MANY", lead_time_days=10)

    def index_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse("admin:index")).status_code == 200
        return len(queries)

    waiting_queue(product, 3)
    few = index_queries()
    waiting_queue(ProductFactory(sku="MORE", lead_time_days=10), 60)
    for i in range(12):
        waiting_queue(ProductFactory(sku=f"P{i}", lead_time_days=10), 2)
    order = place(("MANY", 1))
    clock_for(order, ship_by=timezone.localdate())
    purchase_order(main, ("MANY", 100), days=0)

    assert index_queries() == few
    assert Backorder.objects.filter(status=Backorder.Status.WAITING).count() > 80
    assert PurchaseOrder.objects.exists()


def test_each_role_gets_shortcuts_to_its_daily_work_and_each_opens(client, main):
    tasks = {}
    for role in (WAREHOUSE, CUSTOMER_SERVICE):
        user = role_user(role)
        client.force_login(user)
        tasks[role] = dict(dashboard_for(user).tasks)
        for label, url in tasks[role].items():
            assert client.get(url).status_code == 200, (role, label)

    assert list(tasks[WAREHOUSE]) == [
        "Receive a delivery",
        "Ship orders",
        "Adjust stock",
        "Import a stock count",
        "Import purchase orders",
    ]
    assert list(tasks[CUSTOMER_SERVICE]) == ["Set ETAs", "Cancel an order", "Customer emails"]


def test_the_dashboard_is_counted_once_a_minute_per_set_of_permissions_and_says_when(client, shop, settings):
    from django.core.cache import cache

    settings.DASHBOARD_CACHE_SECONDS = 60
    cache.clear()
    warehouse, service = role_user(WAREHOUSE), role_user(CUSTOMER_SERVICE)

    client.force_login(service)
    first = client.get(reverse("admin:index")).content.decode()
    assert card_values(first)["Open backorders"][0] == 6
    assert "counted at" in first and "?refresh=1" in first
    place(("TENT", 1))  # one more waiting line

    with CaptureQueriesContext(connection) as cached:
        again = client.get(reverse("admin:index")).content.decode()
    assert card_values(again)["Open backorders"][0] == 6  # the count of a moment ago, labelled as such
    assert not any("backorders_backorder" in q["sql"] for q in cached.captured_queries)

    client.force_login(warehouse)  # other permissions: a count of its own, and no compliance panel leaks
    seen_by_warehouse = card_values(client.get(reverse("admin:index")).content.decode())
    assert seen_by_warehouse["Open backorders"][0] == 7 and "Refunds overdue" not in seen_by_warehouse

    client.force_login(service)
    refreshed = card_values(client.get(reverse("admin:index") + "?refresh=1").content.decode())
    assert refreshed["Open backorders"][0] == 7
