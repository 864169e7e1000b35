"""Who may call what: every API endpoint x method x role (backorders/roles.py), over HTTP with DRF tokens.

Anonymous: 401 JSON. Authenticated without the permission: 403 JSON. Allowed: the endpoint's success
status (the bodies below are valid). The world (a product, stock, an order with a backorder, a purchase
order, a customer email) and one user per role are made once for the module; each test runs in a
savepoint rolled back afterwards, so writes do not leak between cases.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from backorders.models import Backorder
from backorders.roles import CUSTOMER_SERVICE, INVENTORY_MANAGER, STOREFRONT, WAREHOUSE, sync_roles
from notifications.models import Notification

from .api import token_client, user_in_role
from .backorders.factories import place
from .inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock

API = "/api/v1/"
ANONYMOUS = "anonymous"
NO_ROLE = "no role"
ROLES = (ANONYMOUS, NO_ROLE, STOREFRONT, CUSTOMER_SERVICE, WAREHOUSE, INVENTORY_MANAGER)

SF, CS, WH, MGR = STOREFRONT, CUSTOMER_SERVICE, WAREHOUSE, INVENTORY_MANAGER
READERS = {SF, CS, WH, MGR}  # every staff role and the storefront


def in_days(days: int) -> str:
    return (timezone.localdate() + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # formatted with the world's ids: {backorder}, {po}, {notification}
    allowed: frozenset[str]
    success: int = 200
    body: dict | None = None

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def call(method: str, path: str, allowed: set[str], success: int = 200, body: dict | None = None) -> Call:
    return Call(method, path, frozenset(allowed), success, body)


# Every endpoint and method of the API (tests/test_api_contract.py checks this list against the schema).
CALLS = [
    call("get", "warehouses/", READERS),
    call("post", "warehouses/", {MGR}, 201, {"code": "EAST", "name": "East", "priority": 5}),
    call("get", "warehouses/MAIN/", READERS),
    call("get", "products/", READERS),
    call("post", "products/", {MGR}, 201, {"sku": "LID", "name": "Lid"}),
    call("get", "products/KETTLE-1/", READERS),
    call("patch", "products/KETTLE-1/", {MGR}, 200, {"name": "Big mug"}),
    call("get", "orders/", READERS),
    call(
        "post",
        "orders/",
        {SF, CS, MGR},
        201,
        {"customer": {"email": "eve@example.com", "name": "Eve"}, "lines": [{"sku": "KETTLE-1", "quantity": 1}]},
    ),
    call("get", "orders/SO-1/", READERS),
    call("post", "orders/SO-1/cancel/", {CS, MGR}, 200, {}),
    call(
        "post",
        "stock-adjustments/",
        {WH, MGR},
        201,
        {"sku": "KETTLE-1", "warehouse": "MAIN", "delta": 1, "reason": "Cycle count"},
    ),
    call("get", "backorders/", {CS, WH, MGR}),
    call("get", "backorders/{backorder}/", {CS, WH, MGR}),
    call("patch", "backorders/{backorder}/", {CS, MGR}, 200, {"eta": in_days(30), "reason": "Supplier called"}),
    call("get", "purchase-orders/", {CS, WH, MGR}),
    call(
        "post",
        "purchase-orders/",
        {WH, MGR},
        201,
        {"warehouse": "MAIN", "expected_date": in_days(7), "lines": [{"sku": "KETTLE-1", "quantity": 4}]},
    ),
    call("get", "purchase-orders/{po}/", {CS, WH, MGR}),
    call("patch", "purchase-orders/{po}/", {WH, MGR}, 200, {"expected_date": in_days(12)}),
    call("post", "purchase-orders/{po}/cancel/", {WH, MGR}, 200, {}),
    call("post", "purchase-orders/{po}/receive/", {WH, MGR}, 200, {}),
    call("get", "policy/", {CS, MGR}),
    call("patch", "policy/", {MGR}, 200, {"handling_days": 2}),
    call("get", "notifications/", {CS, MGR}),
    call("get", "notifications/{notification}/", {CS, MGR}),
]


def make_world() -> dict[str, int]:
    """A product with 2 of 5 ordered units in stock (so a backorder and a customer email), and an open PO.

    Returns the ids the paths in CALLS need. tests/test_api_contract.py makes the same world.
    """
    product = ProductFactory(sku="KETTLE-1")
    warehouse = WarehouseFactory(code="MAIN", priority=1)
    stock(product, warehouse, 2)
    order = place(("KETTLE-1", 5), number="SO-1")  # 2 allocated, 3 waiting
    po = purchase_order(warehouse, ("KETTLE-1", 10))
    ids = {
        "backorder": Backorder.objects.get(line__order=order).pk,
        "po": po.pk,
        "notification": Notification.objects.filter(order=order).values_list("pk", flat=True).first(),
    }
    assert ids["notification"] is not None, "placing a backorder writes a customer email"
    return ids


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The data and one user per role, made once; rolled back when the module is done."""
    with django_db_blocker.unblock(), transaction.atomic():
        sync_roles()  # the groups, even after a TransactionTestCase flushed them
        ids = make_world()
        users = {role: None if role == ANONYMOUS else user_in_role(None if role == NO_ROLE else role) for role in ROLES}
        yield ids, users
        transaction.set_rollback(True)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", CALLS, ids=str)
def test_permission_matrix(world, endpoint, role):
    ids, users = world
    client = token_client(users[role])

    response = getattr(client, endpoint.method)(API + endpoint.path.format(**ids), endpoint.body, format="json")

    assert response["Content-Type"] == "application/json"
    body = response.json()
    if role == ANONYMOUS:
        assert response.status_code == 401, body
        assert body == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}
        assert response["WWW-Authenticate"] == "Token"
    elif role in endpoint.allowed:
        assert response.status_code == endpoint.success, body
    else:
        assert response.status_code == 403, body
        assert body == {"code": "permission_denied", "detail": "You do not have permission to perform this action."}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path",
    [
        ("delete", "products/KETTLE-1/"),
        ("put", "products/KETTLE-1/"),
        ("delete", "orders/SO-1/"),
        ("get", "stock-adjustments/"),
        ("delete", "policy/"),
        ("put", "backorders/{backorder}/"),
    ],
)
def test_unsupported_method_is_405_json_for_any_authenticated_user(world, method, path):
    ids, users = world

    response = getattr(token_client(users[NO_ROLE]), method)(API + path.format(**ids), {}, format="json")
    anonymous = getattr(token_client(None), method)(API + path.format(**ids), {}, format="json")

    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": f'Method "{method.upper()}" not allowed.'}
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_a_bad_token_is_401_json(world):
    client = token_client(None)
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(f"{API}products/")

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "detail": "Invalid token."}
