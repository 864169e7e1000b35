"""GET/POST warehouses/, GET warehouses/{code}/."""

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from inventory.models import Warehouse

from ..api import client_with
from .factories import WarehouseFactory

pytestmark = pytest.mark.django_db

WAREHOUSES = "/api/v1/warehouses/"


@pytest.fixture
def api():
    return client_with("inventory.view_warehouse", "inventory.add_warehouse", username="warehouse-lead")


def warehouses() -> list:
    return list(Warehouse.objects.order_by("pk").values())


def test_list_is_ordered_by_priority_and_filterable(api):
    WarehouseFactory(code="EAST", name="East", priority=2)
    WarehouseFactory(code="MAIN", name="Main", priority=1)
    WarehouseFactory(code="OLD", name="Old", priority=3, active=False)

    everything = api.get(WAREHOUSES).json()
    active = api.get(WAREHOUSES, {"active": "true"}).json()
    by_code = api.get(WAREHOUSES, {"ordering": "-code"}).json()

    assert everything == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [
            {"code": "MAIN", "name": "Main", "priority": 1, "active": True},
            {"code": "EAST", "name": "East", "priority": 2, "active": True},
            {"code": "OLD", "name": "Old", "priority": 3, "active": False},
        ],
    }
    assert [w["code"] for w in active["results"]] == ["MAIN", "EAST"]
    assert [w["code"] for w in by_code["results"]] == ["OLD", "MAIN", "EAST"]


def test_get_one_warehouse(api):
    WarehouseFactory(code="MAIN", name="Main", priority=1)

    response = api.get(f"{WAREHOUSES}MAIN/")

    assert response.status_code == 200
    assert response.json() == {"code": "MAIN", "name": "Main", "priority": 1, "active": True}


def test_unknown_warehouse_is_404_json(api):
    response = api.get(f"{WAREHOUSES}NOPE/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No warehouse with code 'NOPE'."}


def test_create_warehouse(api):
    response = api.post(WAREHOUSES, {"code": "WEST", "name": "West coast", "priority": 5}, format="json")

    assert response.status_code == 201
    assert response.json() == {"code": "WEST", "name": "West coast", "priority": 5, "active": True}
    assert Warehouse.objects.get(code="WEST").priority == 5


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "No code"}, {"code": ["This field is required."]}),
        ({"code": "X"}, {"name": ["This field is required."]}),
        ({"code": "MAIN", "name": "Again"}, {"code": ["A warehouse with this code already exists."]}),
        (
            {"code": "NO SPACES", "name": "x"},
            {"code": ['Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.']},
        ),
        (
            {"code": "X", "name": "x", "priority": -1},
            {"priority": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"code": "X", "name": "x", "priority": "1"},
            {"priority": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."]},
        ),
        (
            {"code": "X", "name": "x", "priority": 99999},
            {"priority": ["Ensure this value is less than or equal to 32767."]},
        ),
        ({"code": "X", "name": "x", "active": "no"}, {"active": ["Must be true or false (a JSON boolean)."]}),
    ],
    ids=["no-code", "no-name", "duplicate", "bad-slug", "negative-priority", "string-priority", "huge", "string-bool"],
)
def test_bad_warehouse_is_400_and_writes_nothing(api, body, fields):
    WarehouseFactory(code="MAIN")
    before = warehouses()

    response = api.post(WAREHOUSES, body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]) == ("invalid", fields)
    assert warehouses() == before


def test_malformed_json_is_400(api):
    response = api.post(WAREHOUSES, data="{", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert Warehouse.objects.count() == 0


@pytest.mark.parametrize(("method", "path"), [("delete", "MAIN/"), ("patch", "MAIN/"), ("put", "MAIN/"), ("put", "")])
def test_wrong_method_is_405_json(method, path):
    WarehouseFactory(code="MAIN", name="Main")
    admin = User.objects.create_superuser(username="admin")
    client = APIClient()
    client.force_authenticate(admin)
    before = warehouses()

    response = getattr(client, method)(f"{WAREHOUSES}{path}", {"code": "MAIN", "name": "x"}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert warehouses() == before


def test_anonymous_is_401_and_missing_permission_is_403():
    reader = client_with("inventory.view_warehouse")

    anonymous = APIClient().post(WAREHOUSES, {"code": "X", "name": "x"}, format="json")
    refused = reader.post(WAREHOUSES, {"code": "X", "name": "x"}, format="json")

    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    assert refused.status_code == 403
    assert refused.json() == {
        "code": "permission_denied",
        "detail": "You do not have permission to perform this action.",
    }
    assert Warehouse.objects.count() == 0
    assert reader.get(WAREHOUSES).status_code == 200
