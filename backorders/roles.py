"""Staff roles as Django groups, kept in sync with this table after every migrate.

Warehouse staff: stock, receiving, allocation and shipping. Customer service: orders, backorders, ETA edits,
notices and cancellations, no stock changes. Inventory manager: everything, including the policy and
suppliers. Storefront: the API role of a shop front end (place and read orders, read products).
"""

from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

WAREHOUSE = "Warehouse staff"
CUSTOMER_SERVICE = "Customer service"
INVENTORY_MANAGER = "Inventory manager"
STOREFRONT = "Storefront"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    WAREHOUSE: [
        "inventory.view_warehouse",
        "inventory.view_product",
        "inventory.view_stocklevel",
        "inventory.view_stockmovement",
        "inventory.add_stockmovement",
        "inventory.view_supplier",
        "inventory.view_purchaseorder",
        "inventory.add_purchaseorder",
        "inventory.change_purchaseorder",
        "inventory.view_purchaseorderline",
        "orders.view_customer",
        "orders.view_salesorder",
        "orders.ship_salesorder",
        "orders.view_orderline",
        "orders.view_allocation",
        "orders.view_shipment",
        "orders.view_shipmentline",
        "backorders.view_backorder",
        "backorders.view_etachange",
    ],
    CUSTOMER_SERVICE: [
        "inventory.view_warehouse",
        "inventory.view_product",
        "inventory.view_stocklevel",
        "inventory.view_purchaseorder",
        "inventory.view_purchaseorderline",
        "orders.view_customer",
        "orders.change_customer",
        "orders.view_salesorder",
        "orders.add_salesorder",
        "orders.cancel_salesorder",
        "orders.view_orderline",
        "orders.view_allocation",
        "orders.view_shipment",
        "orders.view_shipmentline",
        "backorders.view_backorder",
        "backorders.change_backorder",
        "backorders.change_backorder_eta",
        "backorders.view_etachange",
        "backorders.view_complianceclock",
        "backorders.view_complianceevent",
        "backorders.view_backorderpolicy",
        "notifications.view_notification",
        "notifications.change_notification",
    ],
    STOREFRONT: [
        "inventory.view_product",
        "inventory.view_warehouse",
        "orders.view_salesorder",
        "orders.add_salesorder",
    ],
}
MANAGER_APPS = ("inventory", "orders", "backorders", "notifications")


def sync_roles(apps=global_apps, **_kwargs) -> None:
    """Create the role groups and set their permissions to exactly this table (managers: every permission of
    the product's apps). Safe to run any time; runs after every migrate."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = dict(ROLE_PERMISSIONS)
    wanted[INVENTORY_MANAGER] = [
        f"{app}.{codename}"
        for app, codename in Permission.objects.filter(content_type__app_label__in=MANAGER_APPS).values_list(
            "content_type__app_label", "codename"
        )
    ]
    for name, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=name)
        pairs = [p.split(".", 1) for p in perms]
        found = Permission.objects.filter(
            content_type__app_label__in={a for a, _ in pairs}, codename__in={c for _, c in pairs}
        ).select_related("content_type")
        group.permissions.set([p for p in found if [p.content_type.app_label, p.codename] in pairs])


def connect() -> None:
    post_migrate.connect(_after_migrate, dispatch_uid="backorders.sync_roles")


def _after_migrate(sender, **kwargs) -> None:
    if sender.label == "backorders":  # once per migrate, after our permissions exist
        sync_roles()
