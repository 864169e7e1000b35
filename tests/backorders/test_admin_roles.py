"""Each role does its own work in the admin and nothing else: the actions offered and allowed follow the role's
permissions (orders.ship_salesorder, orders.cancel_salesorder, backorders.change_backorder_eta,
inventory.add_stockmovement, backorders.change_backorderpolicy)."""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from backorders.models import BackorderPolicy
from backorders.roles import CUSTOMER_SERVICE, INVENTORY_MANAGER, WAREHOUSE
from backorders.status_links import status_token
from inventory.models import StockMovement
from orders.models import SalesOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .factories import place
from .test_admin import action

pytestmark = pytest.mark.django_db

ORDERS = "admin:orders_salesorder_changelist"
BACKORDERS = "admin:backorders_backorder_changelist"
PURCHASE_ORDERS = "admin:inventory_purchaseorder_changelist"


def role_user(role: str, username: str | None = None) -> User:
    """A staff user in the role's group (as seed_demo creates them)."""
    user = User.objects.create_user(username or role.lower().replace(" ", "_"), password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def offered_actions(client, url_name: str) -> set[str]:
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    form = response.context["action_form"]
    return {name for name, _label in form.fields["action"].choices if name} if form else set()


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def test_warehouse_staff_allocate_ship_and_receive_but_do_not_cancel_or_edit_etas(client, main):
    client.force_login(role_user(WAREHOUSE))

    assert offered_actions(client, ORDERS) == {"allocate_stock", "ship_allocated"}
    assert offered_actions(client, BACKORDERS) == set()
    assert {"receive_outstanding", "cancel_purchase_orders"} <= offered_actions(client, PURCHASE_ORDERS)
    assert client.get(reverse("admin:inventory_stocklevel_adjust")).status_code == 200
    assert client.get(reverse("admin:inventory_stocklevel_import")).status_code == 200  # stock counts


def test_customer_service_cancel_and_edit_etas_but_do_not_ship_or_touch_stock(client, main):
    client.force_login(role_user(CUSTOMER_SERVICE))

    assert offered_actions(client, ORDERS) == {"cancel_orders"}
    assert offered_actions(client, BACKORDERS) == {
        "set_eta",
        "send_status_update",
        "offer_cancellation",
        "pin_priority",
    }
    assert offered_actions(client, PURCHASE_ORDERS) <= {"export_admin_action"}
    assert client.get(reverse("admin:inventory_stocklevel_adjust")).status_code == 403
    assert client.get(reverse("admin:inventory_stocklevel_import")).status_code == 403
    assert client.get(reverse("admin:inventory_product_import")).status_code == 403


def test_an_action_outside_the_role_does_nothing_when_posted_anyway(client, main):
    stock(ProductFactory(sku="MUG"), main, 2)
    order = place(("MUG", 2))
    client.force_login(role_user(CUSTOMER_SERVICE))

    action(client, ORDERS, "ship_allocated", [order])
    client.force_login(role_user(WAREHOUSE))
    action(client, ORDERS, "cancel_orders", [order], confirm=True, scope="all")

    order.refresh_from_db()
    assert order.status == SalesOrder.Status.ALLOCATED
    assert order.lines.get().shipped == order.lines.get().cancelled == 0


def test_customer_service_sees_the_policy_read_only_and_cannot_change_it(client):
    client.force_login(role_user(CUSTOMER_SERVICE))
    policy = BackorderPolicy.current()
    url = reverse("admin:backorders_backorderpolicy_change", args=[policy.pk])

    page = client.get(url)
    response = client.post(url, {"fill_strategy": "tier", "handling_days": 9})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert response.status_code == 403
    policy.refresh_from_db()
    assert (policy.fill_strategy, policy.handling_days) == ("fifo", 1)


def test_a_manager_changes_the_policy_and_adjusts_stock(client, main):
    client.force_login(role_user(INVENTORY_MANAGER))
    product = ProductFactory(sku="MUG")
    policy = BackorderPolicy.current()
    url = reverse("admin:backorders_backorderpolicy_change", args=[policy.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update(fill_strategy="tier", handling_days=2)

    response = client.post(url, data)
    adjusted = client.post(
        reverse("admin:inventory_stocklevel_adjust"),
        {"product": product.pk, "warehouse": main.pk, "delta": 4, "reason": "Found in returns"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    policy.refresh_from_db()
    assert (policy.fill_strategy, policy.handling_days) == ("tier", 2)
    assert adjusted.status_code == 302
    assert StockMovement.objects.get(reason="Found in returns").quantity == 4


def test_only_managers_import_products_and_warehouse_staff_import_purchase_orders(client, main):
    ProductFactory(sku="MUG")
    purchase_order(main, ("MUG", 1))
    client.force_login(role_user(WAREHOUSE))
    warehouse_can = [
        client.get(reverse(f"admin:inventory_{model}_import")).status_code
        for model in ("product", "purchaseorder", "stocklevel")
    ]
    client.force_login(role_user(INVENTORY_MANAGER))
    manager_can = [
        client.get(reverse(f"admin:inventory_{model}_import")).status_code
        for model in ("product", "purchaseorder", "stocklevel")
    ]

    assert warehouse_can == [403, 200, 200]
    assert manager_can == [200, 200, 200]


def test_the_order_page_links_to_the_customers_status_page_and_emails(client, main):
    ProductFactory(sku="MUG")
    order = place(("MUG", 2), number="SO-9")
    client.force_login(role_user(CUSTOMER_SERVICE))

    page = client.get(reverse("admin:orders_salesorder_change", args=[order.pk])).content.decode()

    status = reverse("status-page", args=[status_token(order)])
    assert f'href="{status}"' in page
    assert client.get(status).status_code == 200
    assert f"{reverse('admin:notifications_notification_changelist')}?order=SO-9" in page


def test_seed_demo_creates_one_staff_user_per_role_and_prints_the_logins(client):
    from io import StringIO

    from django.contrib.auth import authenticate
    from django.core.management import call_command

    from backorders.management.commands.seed_demo import ROLE_USERS

    out = StringIO()
    call_command("seed_demo", stdout=out)
    output = out.getvalue()

    for username, password, role, _name, _work in ROLE_USERS:
        user = authenticate(username=username, password=password)
        assert user is not None and user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert f"{username} / {password}" in output
    client.force_login(User.objects.get(username="warehouse"))
    assert client.get(reverse("admin:index")).status_code == 200
