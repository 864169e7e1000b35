import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from backorders.roles import CUSTOMER_SERVICE, INVENTORY_MANAGER, STOREFRONT, WAREHOUSE

pytestmark = pytest.mark.django_db


def member_of(role: str) -> User:
    user = User.objects.create_user(role.lower().replace(" ", "_"), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def test_roles_exist_after_migrate_with_the_right_powers():
    warehouse, service, manager, storefront = (
        member_of(r) for r in (WAREHOUSE, CUSTOMER_SERVICE, INVENTORY_MANAGER, STOREFRONT)
    )
    assert warehouse.has_perms(
        ["inventory.add_stockmovement", "orders.ship_salesorder", "inventory.change_purchaseorder"]
    )
    assert not warehouse.has_perm("backorders.change_backorder_eta")
    assert not warehouse.has_perm("orders.cancel_salesorder")

    assert service.has_perms(
        ["backorders.change_backorder_eta", "orders.cancel_salesorder", "notifications.view_notification"]
    )
    assert not service.has_perm("inventory.add_stockmovement")
    assert not service.has_perm("backorders.change_backorderpolicy")

    assert manager.has_perms(
        [
            "backorders.change_backorderpolicy",
            "inventory.add_supplier",
            "inventory.add_stockmovement",
            "orders.ship_salesorder",
        ]
    )
    assert storefront.has_perms(["orders.add_salesorder", "inventory.view_product"])
    assert not storefront.has_perm("orders.cancel_salesorder")


def test_sync_roles_restores_a_tampered_group():
    group = Group.objects.get(name=CUSTOMER_SERVICE)
    group.permissions.clear()
    call_command("sync_roles")
    assert group.permissions.filter(codename="change_backorder_eta").exists()
