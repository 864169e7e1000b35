"""POST/GET orders/, GET orders/{number}/, POST orders/{number}/cancel/ over HTTP with a DRF token."""

import datetime
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from backorders.models import Backorder
from inventory.models import StockLevel, StockMovement
from orders.models import Allocation, Customer, OrderLine, SalesOrder

from ..api import client_with
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
ORDER_PERMS = ("orders.add_salesorder", "orders.view_salesorder", "orders.cancel_salesorder")


@pytest.fixture
def api():
    return client_with(*ORDER_PERMS, username="storefront")


def db_state() -> dict:
    """Everything an order request could write; compared before and after a failing request."""
    return {
        "orders": list(SalesOrder.objects.order_by("pk").values_list("pk", "status")),
        "lines": list(
            OrderLine.objects.order_by("pk").values_list("pk", "allocated", "backordered", "shipped", "cancelled")
        ),
        "customers": list(Customer.objects.order_by("pk").values_list("pk", "email", "name", "tier")),
        "backorders": list(Backorder.objects.order_by("pk").values_list("pk", "quantity", "status")),
        "allocations": list(Allocation.objects.order_by("pk").values_list("pk", "quantity")),
        "stock": list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "allocated")),
        "movements": StockMovement.objects.count(),
    }


def lead_time_eta(lead_time_days: int = 14) -> str:
    """The ETA of a waiting line with no purchase order: today + lead time + the default handling day."""
    return (timezone.localdate() + datetime.timedelta(days=lead_time_days + 1)).isoformat()


def order_body(*lines: tuple[str, object], **extra) -> dict:
    return {
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        **extra,
    }


@pytest.fixture
def mug():
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 6)
    return product


# --- placing orders ---------------------------------------------------------------------------------


def test_partial_backorder_allocates_six_and_backorders_four(api, mug, assert_invariants):
    response = api.post(ORDERS, order_body(("MUG", 10), number="SO-1001"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    placed_at = body.pop("placed_at")
    assert body == {
        "number": "SO-1001",
        "status": "backordered",
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace", "tier": "standard"},
        "ship_complete": False,
        "ship_by": None,
        "credit_applied": False,
        "lines": [
            {
                "sku": "MUG",
                "quantity": 10,
                "allocated": 6,
                "backordered": 4,
                "shipped": 0,
                "cancelled": 0,
                "eta": lead_time_eta(),
            }
        ],
    }
    order = SalesOrder.objects.get(number="SO-1001")
    assert placed_at == order.placed_at.isoformat().replace("+00:00", "Z")
    assert response["Location"] == "http://testserver/api/v1/orders/SO-1001/"
    assert order.created_by.username == "storefront"
    assert Backorder.objects.get(line__order=order).quantity == 4
    assert StockLevel.objects.get(product=mug).allocated == 6
    assert_invariants()


def test_order_in_stock_is_allocated_with_a_generated_number_and_options(api, mug, assert_invariants):
    body = order_body(("MUG", 2), ship_complete=True, ship_by="2030-01-15", credit_applied=True)
    body["customer"]["tier"] = "vip"
    body["customer"]["email"] = "Ada@Example.COM"

    response = api.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["number"].startswith("SO-")
    assert (data["status"], data["ship_complete"], data["ship_by"], data["credit_applied"]) == (
        "allocated",
        True,
        "2030-01-15",
        True,
    )
    assert data["customer"] == {"email": "ada@example.com", "name": "Ada Lovelace", "tier": "vip"}
    assert data["lines"] == [
        {"sku": "MUG", "quantity": 2, "allocated": 2, "backordered": 0, "shipped": 0, "cancelled": 0, "eta": None}
    ]
    assert Customer.objects.get().tier == "vip"
    assert_invariants()


def test_order_for_an_existing_customer_reuses_it(api, mug):
    customer = CustomerFactory(email="ada@example.com", name="Ada L.")

    response = api.post(ORDERS, order_body(("MUG", 1)), format="json")

    assert response.status_code == 201
    assert response.json()["customer"] == {"email": "ada@example.com", "name": "Ada L.", "tier": "standard"}
    assert list(Customer.objects.values_list("pk", flat=True)) == [customer.pk]


def test_not_orderable_sku_is_409_naming_it_and_writes_nothing(api, mug):
    lamp = ProductFactory(sku="LAMP", backorders_allowed=False)
    stock(lamp, WarehouseFactory(code="MAIN"), 3)
    before = db_state()

    response = api.post(ORDERS, order_body(("MUG", 2), ("LAMP", 5)), format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "insufficient_stock",
        "detail": (
            "Not enough stock and backorders are not possible for: LAMP (requested 5, available 3). "
            "Reduce the quantity or remove the item."
        ),
        "sku": "LAMP",
        "available": 3,
        "shortages": [{"sku": "LAMP", "requested": 5, "available": 3}],
    }
    assert db_state() == before


def test_several_short_skus_are_all_listed_in_shortages(api, mug):
    ProductFactory(sku="LAMP", backorders_allowed=False)
    stock(ProductFactory(sku="FAN", discontinued=True), WarehouseFactory(code="MAIN"), 1)
    before = db_state()

    response = api.post(ORDERS, order_body(("LAMP", 1), ("FAN", 4)), format="json")

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["sku"], body["available"]) == ("insufficient_stock", "LAMP", 0)
    assert body["shortages"] == [
        {"sku": "LAMP", "requested": 1, "available": 0},
        {"sku": "FAN", "requested": 4, "available": 1},
    ]
    assert db_state() == before


def test_duplicate_order_number_is_409_and_writes_nothing(api, mug):
    place(("MUG", 1), number="SO-7")
    before = db_state()

    response = api.post(ORDERS, order_body(("MUG", 1), number="SO-7"), format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "duplicate_order_number",
        "detail": "An order numbered SO-7 already exists. Use another number, or omit it to get one.",
        "fields": {"number": ["An order with this number already exists."]},
    }
    assert db_state() == before


def test_malformed_json_is_400_and_writes_nothing(api, mug):
    before = db_state()

    response = api.post(ORDERS, data='{"customer": {', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert set(response.json()) == {"code", "detail"}
    assert db_state() == before


def test_a_json_body_that_is_not_an_object_is_400(api, mug):
    before = db_state()

    response = api.post(ORDERS, data="[1, 2]", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "Invalid data. Expected a dictionary, but got list.",
        "fields": {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]},
    }
    assert db_state() == before


def test_form_encoded_body_is_415(api, mug):
    response = api.post(ORDERS, {"customer": "x"})  # multipart, not JSON

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert SalesOrder.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"lines": [{"sku": "MUG", "quantity": 1}]}, {"customer": ["This field is required."]}),
        (
            {"customer": {"name": "Ada"}, "lines": [{"sku": "MUG", "quantity": 1}]},
            {"customer.email": ["This field is required."]},
        ),
        (
            {"customer": {"email": "ada@example.com"}, "lines": [{"sku": "MUG", "quantity": 1}]},
            {"customer.name": ["This field is required."]},
        ),
        ({"customer": {"email": "ada@example.com", "name": "Ada"}}, {"lines": ["This field is required."]}),
        (order_body(), {"lines": ["This list may not be empty."]}),
        (
            {"customer": {"email": "ada@example.com", "name": "Ada"}, "lines": [{"quantity": 1}]},
            {"lines[0].sku": ["This field is required."]},
        ),
        (
            {"customer": {"email": "ada@example.com", "name": "Ada"}, "lines": [{"sku": "MUG"}]},
            {"lines[0].quantity": ["This field is required."]},
        ),
        (
            {"customer": {"email": "ada@example.com", "name": "Ada"}, "lines": "MUG"},
            {"lines": ['Expected a list of items but got type "str".']},
        ),
        (
            {"customer": {"email": "ada@example.com", "name": "Ada"}, "lines": ["MUG"]},
            {"lines[0]": ["Invalid data. Expected a dictionary, but got str."]},
        ),
        (
            {**order_body(("MUG", 1)), "customer": {"email": "not-an-email", "name": "Ada"}},
            {"customer.email": ["Enter a valid email address."]},
        ),
        (
            {**order_body(("MUG", 1)), "customer": {"email": "ada@example.com", "name": "Ada", "tier": "gold"}},
            {"customer.tier": ['"gold" is not a valid choice.']},
        ),
        (order_body(("MUG", 1), ship_complete="yes"), {"ship_complete": ["Must be true or false (a JSON boolean)."]}),
        (order_body(("MUG", 1), credit_applied=1), {"credit_applied": ["Must be true or false (a JSON boolean)."]}),
        (
            order_body(("MUG", 1), ship_by="next week"),
            {"ship_by": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
        ),
        (order_body(("MUG", 1), number="SO/1"), {"number": ["An order number has no spaces or slashes."]}),
    ],
    ids=[
        "no-customer",
        "no-email",
        "no-name",
        "no-lines",
        "empty-lines",
        "no-sku",
        "no-quantity",
        "lines-not-a-list",
        "line-not-an-object",
        "bad-email",
        "bad-tier",
        "string-boolean",
        "integer-boolean",
        "bad-date",
        "slash-in-number",
    ],
)
def test_missing_or_malformed_fields_are_400_naming_the_path(api, mug, body, fields):
    before = db_state()

    response = api.post(ORDERS, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert db_state() == before


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (0, "Ensure this value is greater than or equal to 1."),
        (-3, "Ensure this value is greater than or equal to 1."),
        (1.5, "Must be a whole number (a JSON integer, not a string, decimal or boolean)."),
        (2.0, "Must be a whole number (a JSON integer, not a string, decimal or boolean)."),
        ("3", "Must be a whole number (a JSON integer, not a string, decimal or boolean)."),
        (True, "Must be a whole number (a JSON integer, not a string, decimal or boolean)."),
        (None, "This field may not be null."),
        (10**7, "Ensure this value is less than or equal to 1000000."),
        (10**30, "Ensure this value is less than or equal to 1000000."),
    ],
    ids=["zero", "negative", "decimal", "float-integer", "string", "boolean", "null", "too-many", "huge"],
)
def test_bad_quantity_is_400_naming_the_line(api, mug, quantity, message):
    ProductFactory(sku="LAMP")
    before = db_state()

    response = api.post(ORDERS, order_body(("LAMP", 1), ("MUG", quantity)), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": f"Invalid input: lines[1].quantity: {message}",
        "fields": {"lines[1].quantity": [message]},
    }
    assert db_state() == before


def test_unknown_sku_is_400_naming_the_line(api, mug):
    before = db_state()

    response = api.post(ORDERS, order_body(("NOPE", 1), ("MUG", 1)), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The order has invalid lines; nothing was written.",
        "fields": {"lines[0].sku": ["No product with SKU 'NOPE'."]},
    }
    assert db_state() == before


def test_same_sku_on_two_lines_is_400(api, mug):
    before = db_state()

    response = api.post(ORDERS, order_body(("MUG", 1), ("MUG", 2)), format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"lines[1].sku": ["SKU MUG is also on line 0; put it on one line."]}
    assert db_state() == before


# --- authentication and permissions -----------------------------------------------------------------


def test_anonymous_request_is_401_json(mug):
    before = db_state()

    response = APIClient().post(ORDERS, order_body(("MUG", 1)), format="json")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"
    assert db_state() == before


def test_invalid_token_is_401_json(mug):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(ORDERS)

    assert response.status_code == 401
    assert response.json() == {"code": "authentication_failed", "detail": "Invalid token."}


def test_placing_without_add_permission_is_403_json(mug):
    client = client_with("orders.view_salesorder")
    before = db_state()

    response = client.post(ORDERS, order_body(("MUG", 1)), format="json")

    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "You do not have permission to perform this action.",
    }
    assert db_state() == before


def test_reading_without_view_permission_is_403(mug):
    place(("MUG", 1), number="SO-1")
    client = client_with("orders.add_salesorder")

    assert client.get(ORDERS).status_code == 403
    assert client.get(f"{ORDERS}SO-1/").status_code == 403


def test_session_login_works_too(mug):
    user = User.objects.create_user(username="clerk", password="pw-for-tests")
    user.user_permissions.add(Permission.objects.get(codename="view_salesorder"))
    client = APIClient()
    client.login(username="clerk", password="pw-for-tests")

    assert client.get(ORDERS).status_code == 200


def test_drf_create_token_command_makes_a_working_token(mug):
    user = User.objects.create_user(username="shopify")
    user.user_permissions.add(Permission.objects.get(codename="view_salesorder"))

    call_command("drf_create_token", "shopify", stdout=open("/dev/null", "w"))  # noqa: SIM115

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=user).key}")
    assert client.get(ORDERS).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", f"{ORDERS}SO-1/"),
        ("patch", f"{ORDERS}SO-1/"),
        ("delete", f"{ORDERS}SO-1/"),
        ("get", f"{ORDERS}SO-1/cancel/"),
    ],
)
def test_wrong_method_is_405_json_and_changes_nothing(api, mug, method, path):
    place(("MUG", 1), number="SO-1")
    before = db_state()

    response = getattr(api, method)(path, {}, format="json")

    assert response.status_code == 405
    assert response.json() == {"code": "method_not_allowed", "detail": f'Method "{method.upper()}" not allowed.'}
    assert db_state() == before


def test_unknown_api_path_is_404_json(api):
    response = api.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No such API endpoint. See /api/docs/."}


# --- reading orders ---------------------------------------------------------------------------------


def test_get_order_by_number(api, mug):
    order = place(("MUG", 10), number="SO-42")
    Backorder.objects.filter(line__order=order).update(eta=datetime.date(2030, 3, 1), eta_source="manual")

    response = api.get(f"{ORDERS}SO-42/")

    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["status"]) == ("SO-42", "backordered")
    assert body["lines"] == [
        {
            "sku": "MUG",
            "quantity": 10,
            "allocated": 6,
            "backordered": 4,
            "shipped": 0,
            "cancelled": 0,
            "eta": "2030-03-01",
        }
    ]


def test_unknown_order_number_is_404_json(api):
    response = api.get(f"{ORDERS}SO-404/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No order numbered 'SO-404'."}


def test_order_list_is_paginated_filtered_and_ordered(api, mug):
    ada = CustomerFactory(email="ada@example.com")
    place(("MUG", 2), number="SO-B", customer=ada)
    place(("MUG", 10), number="SO-A", customer=ada)  # 4 left in stock: 4 allocated, 6 backordered
    place(("MUG", 1), number="SO-C")

    everything = api.get(ORDERS, {"ordering": "number"}).json()
    backordered = api.get(ORDERS, {"status": "backordered", "ordering": "number"}).json()
    by_customer = api.get(ORDERS, {"customer": "ADA@example.com", "ordering": "-number"}).json()

    assert (everything["count"], everything["next"], everything["previous"]) == (3, None, None)
    assert [o["number"] for o in everything["results"]] == ["SO-A", "SO-B", "SO-C"]
    assert [o["number"] for o in backordered["results"]] == ["SO-A", "SO-C"]
    assert [o["number"] for o in by_customer["results"]] == ["SO-B", "SO-A"]


def test_order_list_costs_a_constant_number_of_queries(api, mug):
    place(("MUG", 1))
    with CaptureQueriesContext(connection) as one:
        assert api.get(ORDERS).status_code == 200
    for _ in range(5):
        place(("MUG", 3))
    with CaptureQueriesContext(connection) as six:
        response = api.get(ORDERS)

    assert response.json()["count"] == 6
    assert len(six) == len(one)


def test_bad_list_filter_is_400_json(api):
    response = api.get(ORDERS, {"status": "lost"})

    assert response.status_code == 400
    assert response.json()["fields"] == {"status": ["Select a valid choice. lost is not one of the available choices."]}


# --- cancelling -------------------------------------------------------------------------------------


def test_cancel_whole_order_releases_stock_to_the_next_waiting_order(api, mug, assert_invariants):
    first = place(("MUG", 10), number="SO-1")  # 6 allocated, 4 waiting
    second = place(("MUG", 2), number="SO-2")  # 2 waiting

    response = api.post(f"{ORDERS}SO-1/cancel/", {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["number"], body["status"]) == ("SO-1", "cancelled")
    assert body["lines"] == [
        {"sku": "MUG", "quantity": 10, "allocated": 0, "backordered": 0, "shipped": 0, "cancelled": 10, "eta": None}
    ]
    assert Backorder.objects.get(line__order=first).status == "cancelled"
    second_line = OrderLine.objects.get(order=second)
    assert (second_line.allocated, second_line.backordered) == (2, 0)
    assert StockLevel.objects.get(product=mug).allocated == 2
    assert_invariants()


def test_cancel_some_units_cancels_waiting_units_first(api, mug, assert_invariants):
    place(("MUG", 10), number="SO-1")

    response = api.post(f"{ORDERS}SO-1/cancel/", {"lines": [{"sku": "MUG", "quantity": 3}]}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "backordered"
    assert response.json()["lines"] == [
        {
            "sku": "MUG",
            "quantity": 10,
            "allocated": 6,
            "backordered": 1,
            "shipped": 0,
            "cancelled": 3,
            "eta": lead_time_eta(),
        }
    ]
    assert_invariants()


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        (
            {"lines": [{"sku": "MUG", "quantity": 11}]},
            "cannot_cancel",
            {"lines[0].quantity": ["Only 10 unit(s) of MUG can still be cancelled (0 shipped, 0 already cancelled)."]},
        ),
        (
            {"lines": [{"sku": "LAMP", "quantity": 1}]},
            "cannot_cancel",
            {"lines[0].sku": ["SKU 'LAMP' is not on this order."]},
        ),
        (
            {"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}]},
            "cannot_cancel",
            {"lines[1].sku": ["SKU MUG is listed twice; list it once."]},
        ),
        (
            {"lines": [{"sku": "MUG", "quantity": "2"}]},
            "invalid",
            {"lines[0].quantity": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."]},
        ),
        (
            {"lines": [{"sku": "MUG", "quantity": 0}]},
            "invalid",
            {"lines[0].quantity": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"lines": []}, "invalid", {"lines": ["This list may not be empty."]}),
    ],
    ids=["more-than-outstanding", "sku-not-on-order", "sku-twice", "string-quantity", "zero", "empty-lines"],
)
def test_bad_cancel_is_400_and_changes_nothing(api, mug, body, code, fields):
    ProductFactory(sku="LAMP")
    place(("MUG", 10), number="SO-1")
    before = db_state()

    response = api.post(f"{ORDERS}SO-1/cancel/", body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]) == (code, fields)
    assert db_state() == before


def test_cancelling_a_cancelled_order_is_400(api, mug):
    place(("MUG", 2), number="SO-1")
    assert api.post(f"{ORDERS}SO-1/cancel/", {}, format="json").status_code == 200
    before = db_state()

    response = api.post(f"{ORDERS}SO-1/cancel/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "cannot_cancel",
        "detail": "Order SO-1 has nothing left to cancel: every unit is shipped or cancelled.",
    }
    assert db_state() == before


def test_cancel_unknown_order_is_404_json(api):
    response = api.post(f"{ORDERS}SO-404/cancel/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No order numbered 'SO-404'."}


def test_cancel_needs_cancel_permission_not_add_or_change(mug):
    place(("MUG", 2), number="SO-1")
    storefront = client_with("orders.add_salesorder", "orders.view_salesorder", username="storefront")
    editor = client_with("orders.change_salesorder", username="order-editor")
    service = client_with("orders.cancel_salesorder", username="customer-service")
    before = db_state()

    refused = storefront.post(f"{ORDERS}SO-1/cancel/", {}, format="json")
    refused_editor = editor.post(f"{ORDERS}SO-1/cancel/", {}, format="json")

    assert refused.status_code == refused_editor.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert db_state() == before
    assert service.post(f"{ORDERS}SO-1/cancel/", {}, format="json").status_code == 200


def test_cancel_malformed_json_is_400(api, mug):
    place(("MUG", 2), number="SO-1")
    before = db_state()

    response = api.post(f"{ORDERS}SO-1/cancel/", data="{lines", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert db_state() == before


def test_error_bodies_are_always_json_objects_with_code_and_detail(api):
    """A guard on the shape the SPEC promises, over a few unrelated failures."""
    for response in (
        api.get(f"{ORDERS}nope/"),
        api.delete(ORDERS),
        api.post(ORDERS, data="nope", content_type="application/json"),
    ):
        assert response["Content-Type"] == "application/json"
        body = json.loads(response.content)
        assert {"code", "detail"} <= set(body)


def test_openapi_schema_describes_the_order_endpoints():
    response = APIClient().get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    schema = json.loads(response.content)
    orders = schema["paths"]["/api/v1/orders/"]
    assert orders["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrderCreateRequest"
    }
    assert set(orders["post"]["responses"]) == {"201", "400", "401", "403", "409", "422"}
    assert set(schema["paths"]) >= {
        "/api/v1/orders/{number}/",
        "/api/v1/orders/{number}/cancel/",
        "/api/v1/stock-adjustments/",
        "/api/v1/products/",
        "/api/v1/products/{sku}/",
        "/api/v1/warehouses/",
    }
