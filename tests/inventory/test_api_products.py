"""GET/POST products/, GET/PATCH products/{sku}/: stock sums, availability, next ETA, filters."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from backorders.selectors import Availability, availability_for
from inventory.api.filters import availability_q
from inventory.models import Product, StockLevel, StockMovement, Supplier
from inventory.selectors import products_with_stock

from ..api import client_with
from ..backorders.factories import place
from .factories import ProductFactory, WarehouseFactory, stock

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
PRODUCT_PERMS = ("inventory.view_product", "inventory.add_product", "inventory.change_product")


@pytest.fixture
def api():
    return client_with(*PRODUCT_PERMS, username="merchandiser")


def db_state() -> list:
    return [
        list(Product.objects.order_by("pk").values()),
        list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "allocated")),
        StockMovement.objects.count(),
    ]


def eta_in(days: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


@pytest.fixture
def four_states():
    """One product in each availability state (plus a discontinued one), stock in two warehouses."""
    main = WarehouseFactory(code="MAIN", priority=1)
    east = WarehouseFactory(code="EAST", priority=2)
    plenty = ProductFactory(sku="A-PLENTY", name="Plenty", reorder_point=5, safety_stock=2)
    stock(plenty, main, 8)
    stock(plenty, east, 4)
    place(("A-PLENTY", 3))  # 12 on hand, 3 allocated, 9 available > 5
    few = ProductFactory(sku="B-FEW", name="Few", reorder_point=2, safety_stock=5)
    stock(few, main, 5)  # 5 available <= max(2, 5)
    waiting = ProductFactory(sku="C-WAIT", name="Wait", lead_time_days=10)
    stock(waiting, main, 2)
    place(("C-WAIT", 3))  # 2 allocated, 1 backordered, 0 available
    denied = ProductFactory(sku="D-DENIED", name="Denied", backorders_allowed=False)
    gone = ProductFactory(sku="E-GONE", name="Gone", discontinued=True)
    stock(gone, main, 1)
    place(("E-GONE", 1))
    return plenty, few, waiting, denied, gone


def test_list_shows_every_availability_state_and_next_eta(api, four_states):
    response = api.get(PRODUCTS)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (5, None, None)
    common = {"backorders_allowed": True, "discontinued": False, "lead_time_days": 14}
    assert body["results"] == [
        {
            **common,
            "sku": "A-PLENTY",
            "name": "Plenty",
            "safety_stock": 2,
            "reorder_point": 5,
            "on_hand": 12,
            "allocated": 3,
            "available": 9,
            "availability": "in_stock",
            "next_eta": None,
        },
        {
            **common,
            "sku": "B-FEW",
            "name": "Few",
            "safety_stock": 5,
            "reorder_point": 2,
            "on_hand": 5,
            "allocated": 0,
            "available": 5,
            "availability": "low_stock",
            "next_eta": None,
        },
        {
            **common,
            "lead_time_days": 10,
            "sku": "C-WAIT",
            "name": "Wait",
            "safety_stock": 0,
            "reorder_point": 0,
            "on_hand": 2,
            "allocated": 2,
            "available": 0,
            "availability": "backorder",
            "next_eta": eta_in(10 + 1),  # lead time + one handling day
        },
        {
            **common,
            "backorders_allowed": False,
            "sku": "D-DENIED",
            "name": "Denied",
            "safety_stock": 0,
            "reorder_point": 0,
            "on_hand": 0,
            "allocated": 0,
            "available": 0,
            "availability": "out_of_stock",
            "next_eta": None,
        },
        {
            **common,
            "discontinued": True,
            "sku": "E-GONE",
            "name": "Gone",
            "safety_stock": 0,
            "reorder_point": 0,
            "on_hand": 1,
            "allocated": 1,
            "available": 0,
            "availability": "out_of_stock",
            "next_eta": None,
        },
    ]


def test_inactive_warehouses_do_not_count(api):
    product = ProductFactory(sku="LAMP")
    old = WarehouseFactory(code="OLD")
    stock(product, old, 7)
    old.active = False
    old.save()

    body = api.get(f"{PRODUCTS}LAMP/").json()

    assert (body["on_hand"], body["available"], body["availability"]) == (0, 0, "backorder")
    assert body["next_eta"] == eta_in(14 + 1)


@pytest.mark.parametrize(
    ("availability", "skus"),
    [
        ("in_stock", ["A-PLENTY"]),
        ("low_stock", ["B-FEW"]),
        ("backorder", ["C-WAIT"]),
        ("out_of_stock", ["D-DENIED", "E-GONE"]),
    ],
)
def test_filter_by_availability(api, four_states, availability, skus):
    response = api.get(PRODUCTS, {"availability": availability})

    assert response.status_code == 200
    assert [p["sku"] for p in response.json()["results"]] == skus
    assert {p["availability"] for p in response.json()["results"]} == {availability}


def test_sql_availability_filter_agrees_with_the_selector_at_the_edges():
    """availability_q restates availability_for in SQL: check both on the boundaries of every state."""
    main = WarehouseFactory(code="MAIN")
    cases = [
        # (available, reorder_point, safety_stock, backorders_allowed, discontinued)
        (1, 0, 0, True, False),
        (1, 1, 0, True, False),
        (2, 1, 0, True, False),
        (3, 0, 3, True, False),
        (4, 3, 3, False, False),
        (0, 0, 0, True, False),
        (0, 5, 5, False, False),
        (0, 0, 0, True, True),
        (0, 0, 0, False, True),
    ]
    for i, (available, reorder_point, safety_stock, allowed, discontinued) in enumerate(cases):
        product = ProductFactory(
            sku=f"EDGE-{i}",
            reorder_point=reorder_point,
            safety_stock=safety_stock,
            backorders_allowed=allowed,
            discontinued=discontinued,
        )
        if available:
            stock(product, main, available)

    annotated = products_with_stock(Product.objects.all())
    for state in Availability.values:
        in_sql = set(annotated.filter(availability_q(state)).values_list("sku", flat=True))
        in_python = {p.sku for p in annotated if availability_for(product=p, available=p.total_available) == state}
        assert in_sql == in_python, state


def test_filter_by_sku_one_or_several(api, four_states):
    one = api.get(PRODUCTS, {"sku": "B-FEW"}).json()
    several = api.get(PRODUCTS, {"sku": "E-GONE,A-PLENTY,NOPE"}).json()

    assert [p["sku"] for p in one["results"]] == ["B-FEW"]
    assert [p["sku"] for p in several["results"]] == ["A-PLENTY", "E-GONE"]


def test_ordering_by_available_and_name(api, four_states):
    by_available = api.get(PRODUCTS, {"ordering": "-available,sku"}).json()["results"]
    by_name = api.get(PRODUCTS, {"ordering": "name"}).json()["results"]

    assert [p["sku"] for p in by_available] == ["A-PLENTY", "B-FEW", "C-WAIT", "D-DENIED", "E-GONE"]
    assert [p["name"] for p in by_name] == ["Denied", "Few", "Gone", "Plenty", "Wait"]


def test_bad_availability_filter_is_400_json(api):
    response = api.get(PRODUCTS, {"availability": "soon"})

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "Invalid input: availability: Select a valid choice. soon is not one of the available choices.",
        "fields": {"availability": ["Select a valid choice. soon is not one of the available choices."]},
    }


def test_list_queries_are_bounded(api):
    """Stock sums come from one annotated query; only backorder-state products cost extra (their next ETA)."""
    main = WarehouseFactory(code="MAIN")
    stock(ProductFactory(sku="IN-0"), main, 5)
    with CaptureQueriesContext(connection) as one:
        api.get(PRODUCTS)
    for i in range(1, 8):
        stock(ProductFactory(sku=f"IN-{i}"), main, 5)
    with CaptureQueriesContext(connection) as eight:
        response = api.get(PRODUCTS)

    assert response.json()["count"] == 8
    assert len(eight) == len(one)


def test_next_eta_falls_back_to_the_suppliers_lead_time(api):
    supplier = Supplier.objects.create(name="Potter & Co", lead_time_days=20)
    ProductFactory(sku="VASE", lead_time_days=None, supplier=supplier)

    body = api.get(f"{PRODUCTS}VASE/").json()

    assert (body["lead_time_days"], body["availability"], body["next_eta"]) == (None, "backorder", eta_in(20 + 1))


def test_get_one_product(api, four_states):
    response = api.get(f"{PRODUCTS}C-WAIT/")

    assert response.status_code == 200
    assert (response.json()["availability"], response.json()["next_eta"]) == ("backorder", eta_in(11))


def test_unknown_sku_is_404_json(api):
    response = api.get(f"{PRODUCTS}NOPE/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No product with SKU 'NOPE'."}


def test_sku_with_a_dot_is_addressable(api):
    ProductFactory(sku="MUG.12OZ")

    assert api.get(f"{PRODUCTS}MUG.12OZ/").json()["sku"] == "MUG.12OZ"


def test_create_product(api):
    response = api.post(
        PRODUCTS,
        {"sku": "KETTLE", "name": "Kettle", "lead_time_days": 7, "reorder_point": 4, "backorders_allowed": False},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json() == {
        "sku": "KETTLE",
        "name": "Kettle",
        "backorders_allowed": False,
        "discontinued": False,
        "lead_time_days": 7,
        "safety_stock": 0,
        "reorder_point": 4,
        "on_hand": 0,
        "allocated": 0,
        "available": 0,
        "availability": "out_of_stock",
        "next_eta": None,
    }
    assert Product.objects.get(sku="KETTLE").lead_time_days == 7


def test_created_backorderable_product_shows_its_next_eta(api):
    response = api.post(PRODUCTS, {"sku": "TEAPOT", "name": "Teapot", "lead_time_days": 3}, format="json")

    assert response.status_code == 201
    assert (response.json()["availability"], response.json()["next_eta"]) == ("backorder", eta_in(3 + 1))


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "No SKU"}, {"sku": ["This field is required."]}),
        ({"sku": "NEW"}, {"name": ["This field is required."]}),
        ({"sku": "HAS SPACE", "name": "x"}, {"sku": ["A SKU has no spaces or slashes."]}),
        ({"sku": "A/B", "name": "x"}, {"sku": ["A SKU has no spaces or slashes."]}),
        ({"sku": "TAKEN", "name": "x"}, {"sku": ["A product with this SKU already exists."]}),
        (
            {"sku": "NEW", "name": "x", "lead_time_days": -1},
            {"lead_time_days": ["Ensure this value is greater than or equal to 0."]},
        ),
        (
            {"sku": "NEW", "name": "x", "lead_time_days": 40000},
            {"lead_time_days": ["Ensure this value is less than or equal to 32767."]},
        ),
        (
            {"sku": "NEW", "name": "x", "safety_stock": "3"},
            {"safety_stock": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."]},
        ),
        (
            {"sku": "NEW", "name": "x", "reorder_point": 10**12},
            {"reorder_point": ["Ensure this value is less than or equal to 2147483647."]},
        ),
        (
            {"sku": "NEW", "name": "x", "discontinued": "false"},
            {"discontinued": ["Must be true or false (a JSON boolean)."]},
        ),
    ],
    ids=[
        "no-sku",
        "no-name",
        "space",
        "slash",
        "duplicate",
        "negative-lead",
        "huge-lead",
        "string-int",
        "huge-int",
        "string-bool",
    ],
)
def test_bad_product_is_400_and_writes_nothing(api, body, fields):
    ProductFactory(sku="TAKEN")
    before = db_state()

    response = api.post(PRODUCTS, body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]) == ("invalid", fields)
    assert db_state() == before


def test_malformed_json_is_400(api):
    response = api.post(PRODUCTS, data="{sku:", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert Product.objects.count() == 0


def test_patch_changes_fields_and_availability(api):
    product = ProductFactory(sku="MUG", name="Mug")
    stock(product, WarehouseFactory(code="MAIN"), 4)
    assert api.get(f"{PRODUCTS}MUG/").json()["availability"] == "in_stock"

    response = api.patch(f"{PRODUCTS}MUG/", {"name": "Big mug", "reorder_point": 4}, format="json")

    assert response.status_code == 200
    assert (response.json()["name"], response.json()["availability"], response.json()["on_hand"]) == (
        "Big mug",
        "low_stock",
        4,
    )
    product.refresh_from_db()
    assert (product.name, product.reorder_point) == ("Big mug", 4)


def test_patch_with_the_same_sku_is_fine(api):
    ProductFactory(sku="MUG", name="Mug")

    response = api.patch(f"{PRODUCTS}MUG/", {"sku": "MUG", "discontinued": True}, format="json")

    assert response.status_code == 200
    assert (response.json()["discontinued"], response.json()["availability"]) == (True, "out_of_stock")


@pytest.mark.parametrize("new_sku", ["CUP", "TAKEN"])
def test_patch_cannot_change_the_sku(api, new_sku):
    ProductFactory(sku="MUG")
    ProductFactory(sku="TAKEN")
    before = db_state()

    response = api.patch(f"{PRODUCTS}MUG/", {"sku": new_sku, "name": "Cup"}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "sku": [
            "The SKU of an existing product cannot be changed (it is 'MUG'). Create a new product with the new SKU "
            "instead."
        ]
    }
    assert db_state() == before


def test_patch_bad_value_is_400_and_changes_nothing(api):
    ProductFactory(sku="MUG")
    before = db_state()

    response = api.patch(f"{PRODUCTS}MUG/", {"name": "", "safety_stock": 1.5}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "name": ["This field may not be blank."],
        "safety_stock": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."],
    }
    assert db_state() == before


def test_patch_unknown_sku_is_404(api):
    response = api.patch(f"{PRODUCTS}NOPE/", {"name": "x"}, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(("method", "path"), [("put", "MUG/"), ("delete", "MUG/"), ("patch", ""), ("delete", "")])
def test_wrong_method_is_405_json(api, method, path):
    ProductFactory(sku="MUG")
    before = db_state()

    response = getattr(api, method)(f"{PRODUCTS}{path}", {"sku": "MUG", "name": "x"}, format="json")

    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": f'Method "{method.upper()}" not allowed.'}
    assert db_state() == before


def test_anonymous_is_401_json():
    response = APIClient().get(PRODUCTS)

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}


def test_each_method_needs_its_model_permission():
    ProductFactory(sku="MUG")
    reader = client_with("inventory.view_product", username="reader")
    creator = client_with("inventory.add_product", username="creator")
    before = db_state()

    assert reader.get(PRODUCTS).status_code == 200
    assert reader.post(PRODUCTS, {"sku": "NEW", "name": "x"}, format="json").status_code == 403
    assert reader.patch(f"{PRODUCTS}MUG/", {"name": "x"}, format="json").status_code == 403
    assert creator.get(PRODUCTS).status_code == 403
    assert creator.get(PRODUCTS).json() == {
        "code": "permission_denied",
        "detail": "You do not have permission to perform this action.",
    }
    assert db_state() == before
    assert creator.post(PRODUCTS, {"sku": "NEW", "name": "x"}, format="json").status_code == 201
