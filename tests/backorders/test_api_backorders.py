"""GET backorders/ (filters, ordering, constant queries), GET backorders/{id}/ with the ETA history, and
PATCH backorders/{id}/ {eta, reason}: customer service's manual ETA."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backorders.models import Backorder, EtaChange
from backorders.services import stock_adjust_and_fill
from inventory.models import PurchaseOrder
from orders.models import SalesOrder

from ..api import client_with
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = pytest.mark.django_db

BACKORDERS = "/api/v1/backorders/"
CUSTOMER_SERVICE = ("backorders.view_backorder", "backorders.change_backorder_eta")


def day(n: int) -> str:
    return (timezone.localdate() + timedelta(days=n)).isoformat()


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def api():
    return client_with(*CUSTOMER_SERVICE, username="cs-ada")


@pytest.fixture
def tea():
    """TEA: lead time 14 days, nothing in stock."""
    return ProductFactory(sku="TEA", lead_time_days=14)


def backorder_of(order: SalesOrder) -> Backorder:
    return Backorder.objects.get(line__order=order)


def eta_state() -> dict:
    """Everything an ETA edit could write; compared before and after a refused request."""
    return {
        "backorders": list(
            Backorder.objects.order_by("pk").values_list("pk", "quantity", "status", "eta", "eta_source", "priority")
        ),
        "eta_changes": list(EtaChange.objects.order_by("pk").values_list("pk", "new_eta", "new_source")),
    }


# --- listing ----------------------------------------------------------------------------------------


def test_list_shows_each_backorder_with_its_order_customer_and_eta(api, tea):
    stock(tea, WarehouseFactory(code="MAIN"), 2)
    order = place(("TEA", 5), number="SO-1", customer=CustomerFactory(email="ada@example.com"))
    backorder = backorder_of(order)

    response = api.get(BACKORDERS)

    assert response.status_code == 200
    assert response.json() == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": backorder.pk,
                "order": "SO-1",
                "sku": "TEA",
                "customer": "ada@example.com",
                "quantity": 3,
                "original_quantity": 3,
                "status": "waiting",
                "eta": day(15),
                "eta_source": "lead_time",
                "priority": 0,
                "created_at": iso(backorder.created_at),
                "placed_at": iso(order.placed_at),
                "ship_by": None,
            }
        ],
    }


def test_list_shows_the_orders_ship_by_date(api, tea):
    place(("TEA", 1), number="SO-1", ship_by=timezone.localdate() + timedelta(days=30))

    assert api.get(BACKORDERS).json()["results"][0]["ship_by"] == day(30)


@pytest.fixture
def queue(tea):
    """Three waiting TEA lines (SO-1 pinned) and a filled MUG line (SO-3); ETAs set by hand for the filters."""
    mug = ProductFactory(sku="MUG", lead_time_days=14)
    now = timezone.now()
    ada = CustomerFactory(email="ada@example.com")
    orders = {
        "SO-1": place(("TEA", 3), number="SO-1", customer=ada, placed_at=now - timedelta(days=9)),
        "SO-2": place(("TEA", 1), number="SO-2", placed_at=now - timedelta(days=8)),
        "SO-3": place(("MUG", 2), number="SO-3", customer=ada, placed_at=now - timedelta(days=7)),
        "SO-4": place(("TEA", 4), number="SO-4", placed_at=now - timedelta(days=6)),
    }
    stock_adjust_and_fill(
        product=mug, warehouse=WarehouseFactory(code="MAIN"), delta=2, reason="Found", acting_user=None, source="test"
    )
    assert Backorder.objects.get(line__order__number="SO-3").status == "filled"
    today = timezone.localdate()
    Backorder.objects.filter(line__order__number="SO-1").update(eta=today - timedelta(days=2), priority=5)
    Backorder.objects.filter(line__order__number="SO-2").update(eta=today + timedelta(days=3))
    Backorder.objects.filter(line__order__number="SO-3").update(eta=today + timedelta(days=10))
    Backorder.objects.filter(line__order__number="SO-4").update(eta=None, eta_source="")
    # SO-2's promised ship-by date has passed (placed eight days ago, promised for two days ago)
    SalesOrder.objects.filter(number="SO-2").update(ship_by=today - timedelta(days=2))
    return orders


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["order"] for row in response.json()["results"]]


def test_list_filters(api, queue):
    assert numbers(api.get(BACKORDERS, {"status": "waiting", "ordering": "placed_at"})) == ["SO-1", "SO-2", "SO-4"]
    assert numbers(api.get(BACKORDERS, {"status": "filled"})) == ["SO-3"]
    assert numbers(api.get(BACKORDERS, {"sku": "MUG"})) == ["SO-3"]
    assert numbers(api.get(BACKORDERS, {"sku": "MUG,TEA", "ordering": "placed_at"})) == [
        "SO-1",
        "SO-2",
        "SO-3",
        "SO-4",
    ]
    assert numbers(api.get(BACKORDERS, {"customer": " ADA@example.com", "ordering": "placed_at"})) == ["SO-1", "SO-3"]
    assert numbers(api.get(BACKORDERS, {"eta_before": day(3), "ordering": "eta"})) == ["SO-1", "SO-2"]
    assert numbers(api.get(BACKORDERS, {"eta_after": day(3), "ordering": "eta"})) == ["SO-2", "SO-3"]
    assert numbers(api.get(BACKORDERS, {"eta_after": day(0), "eta_before": day(5)})) == ["SO-2"]


def test_overdue_means_waiting_with_a_past_eta_or_a_past_ship_by_date(api, queue):
    # SO-1: ETA two days ago. SO-2: ETA ahead, but its ship-by date has passed. SO-3 is filled, SO-4 has no ETA.
    assert numbers(api.get(BACKORDERS, {"overdue": "true", "ordering": "placed_at"})) == ["SO-1", "SO-2"]
    assert numbers(api.get(BACKORDERS, {"overdue": "false", "ordering": "placed_at"})) == ["SO-3", "SO-4"]


def test_list_ordering(api, queue):
    assert numbers(api.get(BACKORDERS, {"ordering": "-priority,placed_at"})) == ["SO-1", "SO-2", "SO-3", "SO-4"]
    assert numbers(api.get(BACKORDERS, {"ordering": "-quantity"})) == ["SO-4", "SO-1", "SO-2", "SO-3"]
    assert numbers(api.get(BACKORDERS, {"ordering": "-placed_at"})) == ["SO-4", "SO-3", "SO-2", "SO-1"]
    assert numbers(api.get(BACKORDERS, {"ordering": "created_at"})) == ["SO-1", "SO-2", "SO-3", "SO-4"]


def test_ties_are_broken_by_id_so_pages_are_stable(api, tea):
    for i in range(4):
        place(("TEA", 1), number=f"SO-{i}")
    Backorder.objects.update(eta=timezone.localdate() + timedelta(days=7))  # every ETA ties

    assert numbers(api.get(BACKORDERS, {"ordering": "eta"})) == ["SO-0", "SO-1", "SO-2", "SO-3"]
    assert numbers(api.get(BACKORDERS, {"ordering": "-eta"})) == ["SO-0", "SO-1", "SO-2", "SO-3"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "lost"}, "status"),
        ({"eta_before": "next week"}, "eta_before"),
        ({"eta_after": "2030-02-30"}, "eta_after"),
    ],
)
def test_bad_filter_is_400_json(api, params, field):
    response = api.get(BACKORDERS, params)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == [field]


def test_list_costs_the_same_queries_for_3_or_20_rows(api, tea, django_assert_num_queries):
    customers = [CustomerFactory() for _ in range(20)]
    for customer in customers[:3]:
        place(("TEA", 1), customer=customer)
    # the token with its user and their permissions, the page count, the page (orders, customers, products joined)
    with django_assert_num_queries(3):
        assert api.get(BACKORDERS).json()["count"] == 3
    for customer in customers[3:]:
        place(("TEA", 2), customer=customer)
    with django_assert_num_queries(3):
        assert api.get(BACKORDERS).json()["count"] == 20


# --- one backorder ----------------------------------------------------------------------------------


def test_get_one_backorder_with_its_eta_history_newest_first(api, tea):
    order = place(("TEA", 2), number="SO-1")
    po = purchase_order(WarehouseFactory(code="MAIN"), ("TEA", 5), days=10)
    backorder = backorder_of(order)
    edit = api.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": day(20), "reason": "Supplier called"}, format="json")
    assert edit.status_code == 200

    response = api.get(f"{BACKORDERS}{backorder.pk}/")

    assert response.status_code == 200
    body = response.json()
    history = body.pop("eta_history")
    assert (body["id"], body["order"], body["eta"], body["eta_source"]) == (backorder.pk, "SO-1", day(20), "manual")
    changes = list(EtaChange.objects.filter(backorder=backorder).order_by("-created_at", "-id"))
    assert [{key: value for key, value in change.items() if key != "created_at"} for change in history] == [
        {
            "old_eta": day(11),
            "new_eta": day(20),
            "old_source": "purchase_order",
            "new_source": "manual",
            "reason": "Supplier called",
            "user": "cs-ada",
        },
        {
            "old_eta": day(15),
            "new_eta": day(11),
            "old_source": "lead_time",
            "new_source": "purchase_order",
            "reason": f"Pegged to {po.number}",
            "user": None,
        },
        {
            "old_eta": None,
            "new_eta": day(15),
            "old_source": "",
            "new_source": "lead_time",
            "reason": "Lead time (no open purchase order covers it)",
            "user": None,
        },
    ]
    assert [change["created_at"] for change in history] == [iso(change.created_at) for change in changes]


def test_get_one_backorder_costs_a_constant_number_of_queries(api, tea, django_assert_num_queries):
    backorder = backorder_of(place(("TEA", 2)))
    for n in range(5):
        Backorder.objects.filter(pk=backorder.pk).update(eta=None)
        EtaChange.objects.create(backorder=backorder, new_eta=timezone.localdate(), reason=f"change {n}")

    # the token with its user and their permissions, the backorder (joined), its history (users joined)
    with django_assert_num_queries(3):
        assert len(api.get(f"{BACKORDERS}{backorder.pk}/").json()["eta_history"]) == 6


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999"])
def test_unknown_backorder_is_404_json(api, pk):
    response = api.get(f"{BACKORDERS}{pk}/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": f"No backorder with id {pk!r}."}


# --- customer service sets the ETA ------------------------------------------------------------------


def test_patch_sets_a_manual_eta_that_wins_over_pegging_until_cleared(api, tea):
    order = place(("TEA", 2), number="SO-1")
    backorder = backorder_of(order)

    response = api.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": day(30), "reason": "Supplier called"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["eta"], body["eta_source"], body["quantity"], body["status"]) == (day(30), "manual", 2, "waiting")
    assert body["eta_history"][0]["reason"] == "Supplier called"
    assert body["eta_history"][0]["user"] == "cs-ada"

    purchase_order(WarehouseFactory(code="MAIN"), ("TEA", 5), days=5)  # a recompute keeps the manual date
    assert api.get(f"{BACKORDERS}{backorder.pk}/").json()["eta"] == day(30)

    cleared = api.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": None, "reason": "Back to the plan"}, format="json")

    assert cleared.status_code == 200
    assert (cleared.json()["eta"], cleared.json()["eta_source"]) == (day(6), "purchase_order")
    assert [change["reason"] for change in cleared.json()["eta_history"][:2]] == [
        f"Pegged to {PurchaseOrder.objects.get().number}",
        "Manual ETA cleared: Back to the plan",
    ]


def test_the_order_shows_the_manual_eta_on_its_line(tea):
    order = place(("TEA", 2), number="SO-1")
    client = client_with("backorders.change_backorder_eta", "orders.view_salesorder")

    assert client.patch(
        f"{BACKORDERS}{backorder_of(order).pk}/", {"eta": day(9), "reason": "Promised by phone"}, format="json"
    ).json()["eta"] == day(9)
    assert client.get("/api/v1/orders/SO-1/").json()["lines"][0]["eta"] == day(9)


@pytest.mark.parametrize(
    "perms",
    [
        ("backorders.view_backorder",),
        ("backorders.view_backorder", "backorders.change_backorder"),  # the model's change permission is not enough
    ],
)
def test_eta_edit_without_the_customer_service_permission_is_403_and_changes_nothing(tea, perms):
    backorder = backorder_of(place(("TEA", 2)))
    client = client_with(*perms, username="clerk")
    before = eta_state()

    response = client.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": day(30), "reason": "x"}, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "code": "permission_denied",
        "detail": "You do not have permission to perform this action.",
    }
    assert eta_state() == before


BAD_EDITS = [
    ({"eta": "2030-01-01"}, {"reason": ["This field is required."]}),
    ({"eta": "2030-01-01", "reason": "   "}, {"reason": ["This field may not be blank."]}),
    ({"reason": "Supplier called"}, {"eta": ["This field is required."]}),
    (
        {"eta": "soon", "reason": "x"},
        {"eta": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."]},
    ),
    ({"eta": "9999-12-31", "reason": "x"}, {"eta": [f"Must be at most 10 years ahead (by {day(3650)})."]}),
    ({"eta": "2030-01-01", "reason": "x" * 201}, {"reason": ["Ensure this field has no more than 200 characters."]}),
    (
        {"eta": "2030-01-01", "reason": "x", "quantity": 1, "status": "filled"},
        {
            "quantity": ["Not accepted here. Accepted fields: eta, reason."],
            "status": ["Not accepted here. Accepted fields: eta, reason."],
        },
    ),
    (
        {"eta": "2030-01-01", "reason": "x", "eta_source": "lead_time"},
        {"eta_source": ["Not accepted here. Accepted fields: eta, reason."]},
    ),
]


@pytest.mark.parametrize("body, fields", BAD_EDITS)
def test_bad_eta_edit_is_400_naming_the_field_and_changes_nothing(api, tea, body, fields):
    backorder = backorder_of(place(("TEA", 2)))
    before = eta_state()

    response = api.patch(f"{BACKORDERS}{backorder.pk}/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert eta_state() == before


def test_an_eta_in_the_past_is_400_and_changes_nothing(api, tea):
    backorder = backorder_of(place(("TEA", 2)))
    before = eta_state()

    response = api.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": day(-1), "reason": "Typo"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The ETA cannot be in the past.",
        "fields": {"eta": ["Must be today or later."]},
    }
    assert eta_state() == before


def test_eta_edit_on_a_filled_backorder_is_409_and_changes_nothing(api, tea):
    order = place(("TEA", 2))
    stock_adjust_and_fill(
        product=tea, warehouse=WarehouseFactory(code="MAIN"), delta=2, reason="Found", acting_user=None, source="test"
    )
    backorder = backorder_of(order)
    assert backorder.status == "filled"
    before = eta_state()

    response = api.patch(f"{BACKORDERS}{backorder.pk}/", {"eta": day(3), "reason": "x"}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "backorder_closed",
        "detail": f"Backorder {backorder.pk} is filled; only a waiting line has an ETA. Nothing was changed.",
    }
    assert eta_state() == before


def test_setting_the_same_manual_eta_again_is_200_and_writes_no_history(api, tea):
    backorder = backorder_of(place(("TEA", 2)))
    url = f"{BACKORDERS}{backorder.pk}/"
    api.patch(url, {"eta": day(30), "reason": "Supplier called"}, format="json")
    before = eta_state()

    response = api.patch(url, {"eta": day(30), "reason": "Supplier called again"}, format="json")

    assert response.status_code == 200
    assert eta_state() == before


def test_patch_unknown_backorder_is_404_before_validation(api):
    response = api.patch(f"{BACKORDERS}4040/", {}, format="json")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "No backorder with id '4040'."}


# --- access -----------------------------------------------------------------------------------------


def test_reading_needs_the_view_permission(tea):
    backorder = backorder_of(place(("TEA", 2)))
    client = client_with("backorders.change_backorder_eta", username="eta-only")

    assert client.get(BACKORDERS).status_code == 403
    assert client.get(f"{BACKORDERS}{backorder.pk}/").status_code == 403


def test_anonymous_is_401_json(tea):
    response = APIClient().get(BACKORDERS)

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_405_json_and_change_nothing(api, tea, method):
    backorder = backorder_of(place(("TEA", 2)))
    before = eta_state()
    path = BACKORDERS if method == "post" else f"{BACKORDERS}{backorder.pk}/"

    response = getattr(api, method)(path, {"eta": day(5), "reason": "x"}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert eta_state() == before


@pytest.mark.parametrize(
    "path, message",
    [
        ("/api/v1/orders/SO%00/", "No order numbered 'SO\\x00'."),
        ("/api/v1/products/MUG%00/", "No product with SKU 'MUG\\x00'."),
        ("/api/v1/warehouses/MAIN%00/", "No warehouse with code 'MAIN\\x00'."),
        ("/api/v1/backorders/1%00/", "No backorder with id '1\\x00'."),
        ("/api/v1/purchase-orders/1%00/", "No purchase order with id '1\\x00'."),
    ],
)
def test_a_nul_character_in_a_lookup_is_404_json_not_500(path, message):
    client = client_with(
        "orders.view_salesorder",
        "inventory.view_product",
        "inventory.view_warehouse",
        "backorders.view_backorder",
        "inventory.view_purchaseorder",
    )

    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": message}


def test_names_with_a_nul_character_are_400_not_500(tea):
    WarehouseFactory(code="MAIN")
    client = client_with("inventory.add_stockmovement")

    response = client.post(
        "/api/v1/stock-adjustments/", {"sku": "T\x00", "warehouse": "M\x00", "delta": 1, "reason": "x"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "sku": ["Null characters are not allowed."],
        "warehouse": ["Null characters are not allowed."],
    }


def test_a_promised_ship_by_date_more_than_ten_years_ahead_is_400(tea):
    client = client_with("orders.add_salesorder")
    body = {
        "customer": {"email": "ada@example.com", "name": "Ada"},
        "lines": [{"sku": "TEA", "quantity": 1}],
        "ship_by": "9999-12-31",
    }

    response = client.post("/api/v1/orders/", body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"ship_by": [f"Must be at most 10 years ahead (by {day(3650)})."]}
    assert not SalesOrder.objects.exists()
