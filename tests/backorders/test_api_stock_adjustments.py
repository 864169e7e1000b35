"""POST stock-adjustments/: a ledger row, on hand changed, waiting orders filled by what arrives."""

import pytest
from rest_framework.test import APIClient

from backorders.models import Backorder
from inventory.models import StockLevel, StockMovement
from orders.models import Allocation, OrderLine, SalesOrder

from ..api import client_with
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import place

pytestmark = pytest.mark.django_db

ADJUST = "/api/v1/stock-adjustments/"


@pytest.fixture
def api():
    return client_with("inventory.add_stockmovement", username="warehouse")


@pytest.fixture
def mug():
    """MUG: 6 on hand at MAIN, all allocated to SO-1, which waits for 4 more."""
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 6)
    WarehouseFactory(code="EAST", priority=2)
    place(("MUG", 10), number="SO-1")
    return product


def db_state() -> dict:
    return {
        "stock": list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "allocated")),
        "movements": list(StockMovement.objects.order_by("pk").values_list("pk", "quantity")),
        "lines": list(OrderLine.objects.order_by("pk").values_list("pk", "allocated", "backordered")),
        "backorders": list(Backorder.objects.order_by("pk").values_list("pk", "quantity", "status", "eta")),
        "allocations": list(Allocation.objects.order_by("pk").values_list("pk", "quantity")),
        "orders": list(SalesOrder.objects.order_by("pk").values_list("pk", "status")),
    }


def test_adjustment_writes_the_ledger_and_fills_waiting_orders(api, mug, assert_invariants):
    response = api.post(ADJUST, {"sku": "MUG", "warehouse": "MAIN", "delta": 5, "reason": "Found a box"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    movement = StockMovement.objects.get(pk=body.pop("id"))
    created_at = body.pop("created_at")
    assert body == {
        "sku": "MUG",
        "warehouse": "MAIN",
        "delta": 5,
        "reason": "Found a box",
        "on_hand": 11,
        "allocated": 10,
        "filled_lines": 1,
    }
    assert created_at == movement.created_at.isoformat().replace("+00:00", "Z")
    assert (movement.quantity, movement.movement_type, movement.source, movement.user.username) == (
        5,
        "adjustment",
        "api",
        "warehouse",
    )
    line = OrderLine.objects.get(order__number="SO-1")
    assert (line.allocated, line.backordered) == (10, 0)
    assert Backorder.objects.get(line=line).status == "filled"
    assert SalesOrder.objects.get(number="SO-1").status == "allocated"
    assert_invariants()


def test_adjustment_in_a_new_warehouse_creates_its_stock_row(api, mug, assert_invariants):
    response = api.post(ADJUST, {"sku": "MUG", "warehouse": "EAST", "delta": 3, "reason": "Transfer in"}, format="json")

    assert response.status_code == 201
    assert (response.json()["on_hand"], response.json()["allocated"], response.json()["filled_lines"]) == (3, 3, 1)
    line = OrderLine.objects.get(order__number="SO-1")
    assert (line.allocated, line.backordered) == (9, 1)
    assert_invariants()


def test_negative_adjustment_down_to_what_is_allocated(api, assert_invariants):
    product = ProductFactory(sku="LAMP")
    stock(product, WarehouseFactory(code="MAIN"), 9)
    place(("LAMP", 4))

    response = api.post(ADJUST, {"sku": "LAMP", "warehouse": "MAIN", "delta": -5, "reason": "Damaged"}, format="json")

    assert response.status_code == 201
    assert (response.json()["delta"], response.json()["on_hand"], response.json()["allocated"]) == (-5, 4, 4)
    assert response.json()["filled_lines"] == 0
    assert_invariants()


def test_taking_on_hand_below_allocated_is_409_and_changes_nothing(api, mug):
    before = db_state()

    response = api.post(ADJUST, {"sku": "MUG", "warehouse": "MAIN", "delta": -1, "reason": "Broken"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "stock_allocated",
        "detail": (
            "Cannot change MUG at MAIN by -1: 6 on hand of which 6 are allocated to orders, so on hand cannot go "
            "below 6. Cancel or ship those orders first."
        ),
        "sku": "MUG",
        "warehouse": "MAIN",
        "on_hand": 6,
        "allocated": 6,
    }
    assert db_state() == before


def test_zero_delta_is_400_and_changes_nothing(api, mug):
    before = db_state()

    response = api.post(ADJUST, {"sku": "MUG", "warehouse": "MAIN", "delta": 0, "reason": "Nothing"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The change must be a non-zero whole number of units.",
        "fields": {"delta": ["Must not be 0."]},
    }
    assert db_state() == before


WHOLE = "Must be a whole number (a JSON integer, not a string, decimal or boolean)."


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"sku": "MUG", "warehouse": "NOPE", "delta": 1, "reason": "x"},
            {"warehouse": ["No warehouse with code 'NOPE'."]},
        ),
        ({"sku": "NOPE", "warehouse": "MAIN", "delta": 1, "reason": "x"}, {"sku": ["No product with SKU 'NOPE'."]}),
        ({"sku": "MUG", "delta": 1, "reason": "x"}, {"warehouse": ["This field is required."]}),
        ({"warehouse": "MAIN", "delta": 1, "reason": "x"}, {"sku": ["This field is required."]}),
        ({"sku": "MUG", "warehouse": "MAIN", "reason": "x"}, {"delta": ["This field is required."]}),
        ({"sku": "MUG", "warehouse": "MAIN", "delta": 1}, {"reason": ["This field is required."]}),
        (
            {"sku": "MUG", "warehouse": "MAIN", "delta": 1, "reason": "   "},
            {"reason": ["This field may not be blank."]},
        ),
        ({"sku": "MUG", "warehouse": "MAIN", "delta": "5", "reason": "x"}, {"delta": [WHOLE]}),
        ({"sku": "MUG", "warehouse": "MAIN", "delta": 1.5, "reason": "x"}, {"delta": [WHOLE]}),
        ({"sku": "MUG", "warehouse": "MAIN", "delta": True, "reason": "x"}, {"delta": [WHOLE]}),
        (
            {"sku": "MUG", "warehouse": "MAIN", "delta": 10**10, "reason": "x"},
            {"delta": ["Ensure this value is less than or equal to 1000000."]},
        ),
        (
            {"sku": "MUG", "warehouse": "MAIN", "delta": 1, "reason": "x" * 256},
            {"reason": ["Ensure this field has no more than 255 characters."]},
        ),
    ],
    ids=[
        "unknown-warehouse",
        "unknown-sku",
        "no-warehouse",
        "no-sku",
        "no-delta",
        "no-reason",
        "blank-reason",
        "string-delta",
        "decimal-delta",
        "boolean-delta",
        "huge-delta",
        "long-reason",
    ],
)
def test_bad_adjustment_is_400_naming_the_field_and_changes_nothing(api, mug, body, fields):
    before = db_state()

    response = api.post(ADJUST, body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]) == ("invalid", fields)
    assert db_state() == before


def test_malformed_json_is_400(api, mug):
    before = db_state()

    response = api.post(ADJUST, data='{"sku": "MUG", ', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert db_state() == before


def test_anonymous_is_401_json(mug):
    before = db_state()

    response = APIClient().post(ADJUST, {"sku": "MUG", "warehouse": "MAIN", "delta": 5, "reason": "x"}, format="json")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}
    assert db_state() == before


def test_without_add_stockmovement_permission_is_403(mug):
    client = client_with("inventory.view_stockmovement", "inventory.change_stocklevel", username="clerk")
    before = db_state()

    response = client.post(ADJUST, {"sku": "MUG", "warehouse": "MAIN", "delta": 5, "reason": "x"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert db_state() == before


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_wrong_method_is_405_json(api, mug, method):
    before = db_state()

    response = getattr(api, method)(ADJUST)

    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": f'Method "{method.upper()}" not allowed.'}
    assert db_state() == before
