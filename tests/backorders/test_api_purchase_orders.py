"""GET/POST purchase-orders/, GET/PATCH purchase-orders/{id}/, POST .../cancel/ and .../receive/ (with the
fill preview): receipts fill the queue in order and every change re-pegs the ETAs of waiting lines."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backorders.models import Backorder, EtaChange
from backorders.services.cancellation import order_line_units
from inventory.models import PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement, Supplier
from orders.models import Allocation, Customer, OrderLine, SalesOrder

from ..api import client_with
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = pytest.mark.django_db

POS = "/api/v1/purchase-orders/"
BUYER = ("inventory.view_purchaseorder", "inventory.add_purchaseorder", "inventory.change_purchaseorder")
WAREHOUSE_STAFF = ("inventory.view_purchaseorder", "inventory.change_purchaseorder", "inventory.add_stockmovement")


def day(n: int) -> str:
    return (timezone.localdate() + timedelta(days=n)).isoformat()


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def api():
    return client_with(*BUYER, "inventory.add_stockmovement", username="buyer")


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


@pytest.fixture
def tea():
    return ProductFactory(sku="TEA", lead_time_days=30)


def db_state() -> dict:
    """Everything a purchase-order request could write; compared before and after a failing request."""
    return {
        "purchase_orders": list(PurchaseOrder.objects.order_by("pk").values_list("pk", "status", "expected_date")),
        "po_lines": list(
            PurchaseOrderLine.objects.order_by("pk").values_list("pk", "product_id", "quantity", "received")
        ),
        "stock": list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "allocated")),
        "movements": StockMovement.objects.count(),
        "allocations": list(Allocation.objects.order_by("pk").values_list("pk", "quantity")),
        "lines": list(OrderLine.objects.order_by("pk").values_list("pk", "allocated", "backordered")),
        "backorders": list(
            Backorder.objects.order_by("pk").values_list("pk", "quantity", "status", "eta", "eta_source")
        ),
        "eta_changes": EtaChange.objects.count(),
    }


def eta_of(order: SalesOrder) -> tuple[str | None, str]:
    backorder = Backorder.objects.get(line__order=order)
    return (backorder.eta.isoformat() if backorder.eta else None, backorder.eta_source)


def allocated(*orders: SalesOrder, sku: str = "TEA") -> list[int]:
    return [order_line_units(order)[sku]["allocated"] for order in orders]


def on_the_day(value: object) -> object:
    """Module-level cases write a date relative to today as "{day+N}", resolved here when the test runs: computed
    at collection, it would be a day off for a run that crosses midnight."""
    if isinstance(value, str):
        return re.sub(r"\{day\+(\d+)\}", lambda match: day(int(match.group(1))), value)
    if isinstance(value, list):
        return [on_the_day(item) for item in value]
    if isinstance(value, dict):
        return {key: on_the_day(item) for key, item in value.items()}
    return value


def po_body(*lines: dict, **extra) -> dict:
    return {"warehouse": "MAIN", "expected_date": day(10), "lines": list(lines), **extra}


# --- creating ---------------------------------------------------------------------------------------


def test_create_a_purchase_order_repegs_the_waiting_lines(api, main, tea, assert_invariants):
    Supplier.objects.create(name="Tea Traders", lead_time_days=20)
    ProductFactory(sku="MUG")
    waiting = place(("TEA", 4), number="SO-1")
    assert eta_of(waiting) == (day(31), "lead_time")

    response = api.post(
        POS,
        po_body(
            {"sku": "TEA", "quantity": 10},
            {"sku": "MUG", "quantity": 2, "expected_date": day(12)},
            supplier="Tea Traders",
            number="PO-1",
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    po = PurchaseOrder.objects.get()
    assert body == {
        "id": po.pk,
        "number": "PO-1",
        "supplier": "Tea Traders",
        "warehouse": "MAIN",
        "status": "ordered",
        "expected_date": day(10),
        "created_at": iso(po.created_at),
        "lines": [
            {
                "sku": "TEA",
                "quantity": 10,
                "received": 0,
                "outstanding": 10,
                "expected_date": None,
                "arrival_date": day(10),
            },
            {
                "sku": "MUG",
                "quantity": 2,
                "received": 0,
                "outstanding": 2,
                "expected_date": day(12),
                "arrival_date": day(12),
            },
        ],
    }
    assert response["Location"] == f"http://testserver{POS}{po.pk}/"
    assert po.created_by.username == "buyer"
    assert eta_of(waiting) == (day(11), "purchase_order")  # arrival + the default handling day
    assert_invariants()


def test_order_lines_and_products_show_the_pegged_eta(main, tea):
    place(("TEA", 4), number="SO-1")
    client = client_with(*BUYER, "orders.view_salesorder", "inventory.view_product")

    assert client.post(POS, po_body({"sku": "TEA", "quantity": 10}), format="json").status_code == 201

    assert client.get("/api/v1/orders/SO-1/").json()["lines"][0]["eta"] == day(11)
    # a new one-unit order would be covered by the same PO (4 waiting + 1 <= 10)
    assert client.get("/api/v1/products/TEA/").json()["next_eta"] == day(11)


def test_a_draft_without_supplier_or_number_does_not_count_until_ordered(api, main, tea):
    waiting = place(("TEA", 4))

    response = api.post(POS, po_body({"sku": "TEA", "quantity": 10}, status="draft"), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["supplier"], body["number"].startswith("PO-")) == ("draft", None, True)
    assert eta_of(waiting) == (day(31), "lead_time")

    ordered = api.patch(f"{POS}{body['id']}/", {"status": "ordered"}, format="json")

    assert ordered.status_code == 200, ordered.json()
    assert ordered.json()["status"] == "ordered"
    assert eta_of(waiting) == (day(11), "purchase_order")


BAD_CREATES = [
    (po_body({"sku": "TEA", "quantity": 1}, warehouse="NOPE"), {"warehouse": ["No warehouse with code 'NOPE'."]}),
    (po_body({"sku": "TEA", "quantity": 1}, warehouse="MA\x00IN"), {"warehouse": ["Null characters are not allowed."]}),
    (po_body({"sku": "TEA", "quantity": 1}, supplier="\x00"), {"supplier": ["Null characters are not allowed."]}),
    (
        po_body({"sku": "TEA", "quantity": 1}, expected_date="9999-12-31"),
        {"expected_date": ["Must be at most 10 years ahead (by {day+3650})."]},
    ),
    (
        po_body({"sku": "TEA", "quantity": 1, "expected_date": "{day+3651}"}),
        {"lines[0].expected_date": ["Must be at most 10 years ahead (by {day+3650})."]},
    ),
    (po_body({"sku": "TEA", "quantity": 1}, supplier="Nobody"), {"supplier": ["No supplier named 'Nobody'."]}),
    (
        po_body({"sku": "TEA", "quantity": 1}, supplier=7),
        {"supplier": ["Must be a supplier name (a string), not an id."]},
    ),
    (
        {"warehouse": "MAIN", "lines": [{"sku": "TEA", "quantity": 1}]},
        {"expected_date": ["This field is required."]},
    ),
    (po_body(), {"lines": ["This list may not be empty."]}),
    (
        po_body({"sku": "TEA", "quantity": "3"}),
        {"lines[0].quantity": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."]},
    ),
    (
        po_body({"sku": "TEA", "quantity": 0}),
        {"lines[0].quantity": ["Ensure this value is greater than or equal to 1."]},
    ),
    (
        po_body({"sku": "TEA", "quantity": 1, "expected_dat": day(3)}),
        {"lines[0].expected_dat": ["Not accepted here. Accepted fields: sku, quantity, expected_date."]},
    ),
    (
        po_body({"sku": "TEA", "quantity": 1}, status="received"),
        {"status": ['"received" is not a valid choice.']},
    ),
    (
        po_body({"sku": "TEA", "quantity": 1}, received=True),
        {
            "received": [
                "Not accepted here. Accepted fields: supplier, warehouse, expected_date, number, status, lines."
            ]
        },
    ),
]


@pytest.mark.parametrize("body, fields", BAD_CREATES)
def test_bad_create_is_400_naming_the_field_and_writes_nothing(api, main, tea, body, fields):
    body, fields = on_the_day(body), on_the_day(fields)
    place(("TEA", 4))
    before = db_state()

    response = api.post(POS, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert db_state() == before


def test_unknown_or_repeated_sku_is_400_naming_the_line_and_writes_nothing(api, main, tea):
    before = db_state()

    response = api.post(
        POS,
        po_body({"sku": "TEA", "quantity": 1}, {"sku": "NOPE", "quantity": 1}, {"sku": "TEA", "quantity": 2}),
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "The purchase order has invalid lines; nothing was written.",
        "fields": {
            "lines[1].sku": ["No product with SKU 'NOPE'."],
            "lines[2].sku": ["SKU TEA is also on line 0; put it on one line."],
        },
    }
    assert db_state() == before


def test_duplicate_number_is_409_and_writes_nothing(api, main, tea):
    purchase_order(main, ("TEA", 5), number="PO-7")
    before = db_state()

    response = api.post(POS, po_body({"sku": "TEA", "quantity": 1}, number="PO-7"), format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "conflict",
        "detail": "A purchase order numbered PO-7 already exists. Use another number, or omit it.",
        "fields": {"number": ["A purchase order with this number already exists."]},
    }
    assert db_state() == before


# --- reading ----------------------------------------------------------------------------------------


def test_list_is_newest_first_and_filterable(api, main, tea):
    east = WarehouseFactory(code="EAST", priority=2)
    ProductFactory(sku="MUG")
    first = purchase_order(main, ("TEA", 5), number="PO-1")
    second = purchase_order(east, ("MUG", 5), ("TEA", 1), number="PO-2")
    third = purchase_order(main, ("MUG", 5), number="PO-3")
    api.post(f"{POS}{third.pk}/cancel/", format="json")

    def numbers(params: dict) -> list[str]:
        response = api.get(POS, params)
        assert response.status_code == 200, response.json()
        return [po["number"] for po in response.json()["results"]]

    assert numbers({}) == ["PO-3", "PO-2", "PO-1"]
    assert numbers({"status": "ordered"}) == ["PO-2", "PO-1"]
    assert numbers({"warehouse": "MAIN"}) == ["PO-3", "PO-1"]
    assert numbers({"sku": "TEA"}) == ["PO-2", "PO-1"]
    assert numbers({"sku": "MUG,TEA", "ordering": "number"}) == ["PO-1", "PO-2", "PO-3"]
    assert numbers({"sku": "MUG", "status": "cancelled"}) == ["PO-3"]
    oldest = api.get(POS, {"ordering": "created_at"}).json()["results"]
    assert [po["id"] for po in oldest] == [first.pk, second.pk, third.pk]


def test_bad_list_filter_is_400_json(api):
    response = api.get(POS, {"status": "lost"})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["status"]


def test_list_costs_a_constant_number_of_queries(api, main, tea, django_assert_num_queries):
    ProductFactory(sku="MUG")
    supplier = Supplier.objects.create(name="Tea Traders")
    purchase_order(main, ("TEA", 5), supplier=supplier)
    # the token with its user and their permissions, count, page (supplier and warehouse joined), lines (products
    # joined)
    with django_assert_num_queries(4):
        assert api.get(POS).json()["count"] == 1
    for _ in range(5):
        purchase_order(WarehouseFactory(), ("TEA", 5), ("MUG", 2), supplier=supplier)
    with django_assert_num_queries(4):
        assert api.get(POS).json()["count"] == 6


def test_get_one(api, main, tea):
    po = purchase_order(main, ("TEA", 5), number="PO-1")

    response = api.get(f"{POS}{po.pk}/")

    assert response.status_code == 200
    assert (response.json()["number"], response.json()["lines"][0]["outstanding"]) == ("PO-1", 5)


@pytest.mark.parametrize("pk", ["404", "abc", "99999999999999999999"])
def test_unknown_purchase_order_is_404_json(api, pk):
    response = api.get(f"{POS}{pk}/")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": f"No purchase order with id {pk!r}."}


# --- changing and cancelling ------------------------------------------------------------------------


def test_moving_the_expected_date_moves_the_etas_it_covers(api, main, tea):
    covered, behind = place(("TEA", 5)), place(("TEA", 5))
    po = purchase_order(main, ("TEA", 5), days=10)
    assert (eta_of(covered), eta_of(behind)) == ((day(11), "purchase_order"), (day(31), "lead_time"))

    response = api.patch(f"{POS}{po.pk}/", {"expected_date": day(20)}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["expected_date"], response.json()["lines"][0]["arrival_date"]) == (day(20), day(20))
    assert (eta_of(covered), eta_of(behind)) == ((day(21), "purchase_order"), (day(31), "lead_time"))


def test_patch_lines_changes_and_adds_lines_by_sku(api, main, tea):
    ProductFactory(sku="MUG")
    covered, behind = place(("TEA", 5)), place(("TEA", 5))
    po = purchase_order(main, ("TEA", 5), days=10)

    response = api.patch(
        f"{POS}{po.pk}/",
        {"lines": [{"sku": "TEA", "quantity": 10, "expected_date": day(12)}, {"sku": "MUG", "quantity": 3}]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert [(line["sku"], line["quantity"], line["arrival_date"]) for line in response.json()["lines"]] == [
        ("TEA", 10, day(12)),
        ("MUG", 3, day(10)),
    ]
    assert (eta_of(covered), eta_of(behind)) == ((day(13), "purchase_order"), (day(13), "purchase_order"))


def test_a_line_cannot_drop_below_what_was_received(api, main, tea):
    po = purchase_order(main, ("TEA", 5))
    api.post(f"{POS}{po.pk}/receive/", {"lines": [{"sku": "TEA", "quantity": 3}]}, format="json")
    before = db_state()

    response = api.patch(f"{POS}{po.pk}/", {"lines": [{"sku": "TEA", "quantity": 2}]}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == {"lines[0].quantity": ["3 already received; the quantity cannot be less."]}
    assert db_state() == before


BAD_PATCHES = [
    (
        {"status": "cancelled"},
        {"status": ["Only a draft can be marked ordered here; use .../cancel/ or .../receive/ instead."]},
    ),
    ({"status": "ordered"}, {"status": ["Cannot change ordered to ordered."]}),
    ({"expected_date": None}, {"expected_date": ["This field may not be null."]}),
    ({"expected_date": "9999-12-31"}, {"expected_date": ["Must be at most 10 years ahead (by {day+3650})."]}),
    ({"lines": []}, {"lines": ["This list may not be empty."]}),
    ({"lines": [{"sku": "NOPE", "quantity": 1}]}, {"lines[0].sku": ["No product with SKU 'NOPE'."]}),
    ({"warehouse": "EAST"}, {"warehouse": ["Not accepted here. Accepted fields: expected_date, status, lines."]}),
]


@pytest.mark.parametrize("body, fields", BAD_PATCHES)
def test_bad_patch_is_400_and_changes_nothing(api, main, tea, body, fields):
    body, fields = on_the_day(body), on_the_day(fields)
    place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5))
    before = db_state()

    response = api.patch(f"{POS}{po.pk}/", body, format="json")

    assert response.status_code == 400
    assert response.json()["fields"] == fields
    assert db_state() == before


def test_cancel_repegs_to_lead_time_and_a_second_cancel_is_409(api, main, tea):
    waiting = place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5), number="PO-1")
    assert eta_of(waiting) == (day(11), "purchase_order")

    response = api.post(f"{POS}{po.pk}/cancel/", format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert eta_of(waiting) == (day(31), "lead_time")
    before = db_state()

    again = api.post(f"{POS}{po.pk}/cancel/", format="json")
    patched = api.patch(f"{POS}{po.pk}/", {"expected_date": day(3)}, format="json")

    assert again.status_code == 409
    assert again.json() == {"code": "purchase_order_closed", "detail": "PO-1 is already cancelled."}
    assert patched.status_code == 409
    assert patched.json() == {
        "code": "purchase_order_closed",
        "detail": "PO-1 is cancelled and can no longer change.",
    }
    assert db_state() == before


# --- receiving --------------------------------------------------------------------------------------


def test_receipts_of_5_then_4_fill_orders_of_3_4_2_in_fifo_order(api, main, tea, assert_invariants):
    ada, bob, cy = (CustomerFactory(email=f"{name}@example.com") for name in ("ada", "bob", "cy"))
    first = place(("TEA", 3), number="SO-1", customer=ada)
    second = place(("TEA", 4), number="SO-2", customer=bob)
    third = place(("TEA", 2), number="SO-3", customer=cy)
    ids = [Backorder.objects.get(line__order=order).pk for order in (first, second, third)]
    po1 = purchase_order(main, ("TEA", 5), number="PO-1")
    po2 = purchase_order(main, ("TEA", 4), number="PO-2", days=20)

    response = api.post(f"{POS}{po1.pk}/receive/", {}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["purchase_order"]["status"], body["purchase_order"]["lines"][0]["received"]) == ("received", 5)
    assert (body["received"], body["dry_run"]) == ({"TEA": 5}, False)
    filled = {"sku": "TEA"}
    assert body["filled"] == [
        {**filled, "backorder": ids[0], "order": "SO-1", "customer": "ada@example.com", "units": 3, "still_waiting": 0},
        {**filled, "backorder": ids[1], "order": "SO-2", "customer": "bob@example.com", "units": 2, "still_waiting": 2},
    ]
    assert body["still_waiting"] == [
        {"backorder": ids[1], "order": "SO-2", "customer": "bob@example.com", "sku": "TEA", "quantity": 2},
        {"backorder": ids[2], "order": "SO-3", "customer": "cy@example.com", "sku": "TEA", "quantity": 2},
    ]
    assert allocated(first, second, third) == [3, 2, 0]

    response = api.post(f"{POS}{po2.pk}/receive/", {"lines": [{"sku": "TEA", "quantity": 4}]}, format="json")

    assert response.status_code == 200, response.json()
    assert [(e["order"], e["units"], e["still_waiting"]) for e in response.json()["filled"]] == [
        ("SO-2", 2, 0),
        ("SO-3", 2, 0),
    ]
    assert response.json()["still_waiting"] == []
    assert allocated(first, second, third) == [3, 4, 2]
    assert StockLevel.objects.get(product=tea).on_hand == 9
    movements = StockMovement.objects.filter(movement_type="receipt").order_by("id")
    assert [(m.quantity, m.source, m.user.username) for m in movements] == [(5, "PO-1", "buyer"), (4, "PO-2", "buyer")]
    assert_invariants()


def test_the_tier_strategy_serves_a_vip_placed_last_first(api, main, tea):
    api_manager = client_with("backorders.change_backorderpolicy", username="manager")
    assert api_manager.patch("/api/v1/policy/", {"fill_strategy": "tier"}, format="json").status_code == 200
    standard = place(("TEA", 3))
    vip = place(("TEA", 3), customer=CustomerFactory(tier=Customer.Tier.VIP))
    po = purchase_order(main, ("TEA", 3))

    response = api.post(f"{POS}{po.pk}/receive/", {}, format="json")

    assert [e["order"] for e in response.json()["filled"]] == [vip.number]
    assert allocated(standard, vip) == [0, 3]


def test_receiving_part_of_a_po_leaves_it_partially_received(api, main, tea):
    po = purchase_order(main, ("TEA", 5))

    response = api.post(f"{POS}{po.pk}/receive/", {"lines": [{"sku": "TEA", "quantity": 2}]}, format="json")

    assert response.status_code == 200
    assert response.json()["purchase_order"]["status"] == "partially_received"
    assert response.json()["purchase_order"]["lines"][0] | {"sku": "TEA"} == {
        "sku": "TEA",
        "quantity": 5,
        "received": 2,
        "outstanding": 3,
        "expected_date": None,
        "arrival_date": day(10),
    }
    assert (response.json()["filled"], response.json()["still_waiting"]) == ([], [])


def test_dry_run_shows_who_would_be_filled_and_changes_nothing(api, main, tea):
    first, second, third = place(("TEA", 3), number="SO-1"), place(("TEA", 4), number="SO-2"), place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5))
    before = db_state()

    response = api.post(f"{POS}{po.pk}/receive/", {"dry_run": True}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["dry_run"], body["received"]) == (True, {"TEA": 5})
    assert [(e["order"], e["units"], e["still_waiting"]) for e in body["filled"]] == [("SO-1", 3, 0), ("SO-2", 2, 2)]
    assert [(e["order"], e["quantity"]) for e in body["still_waiting"]] == [("SO-2", 2), (third.number, 2)]
    assert (body["purchase_order"]["status"], body["purchase_order"]["lines"][0]["received"]) == ("ordered", 0)
    assert db_state() == before
    assert allocated(first, second, third) == [0, 0, 0]


def test_over_receipt_is_400_naming_the_line_and_changes_nothing(api, main, tea):
    ProductFactory(sku="MUG")
    place(("TEA", 2))
    po = purchase_order(main, ("MUG", 1), ("TEA", 5))
    api.post(f"{POS}{po.pk}/receive/", {"lines": [{"sku": "TEA", "quantity": 2}]}, format="json")
    before = db_state()

    response = api.post(
        f"{POS}{po.pk}/receive/",
        {"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "TEA", "quantity": 4}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "over_receipt",
        "detail": f"The receipt does not match {po.number}; nothing was received.",
        "fields": {
            "lines[1].quantity": ["Only 3 of 5 TEA are still outstanding (2 received); receiving 4 would over-receive."]
        },
    }
    assert db_state() == before


BAD_RECEIPTS = [
    ({"lines": [{"sku": "MUG", "quantity": 1}]}, "over_receipt", {"lines[0].sku": ["SKU 'MUG' is not on PO-1."]}),
    (
        {"lines": [{"sku": "TEA", "quantity": 1}, {"sku": "TEA", "quantity": 1}]},
        "over_receipt",
        {"lines[1].sku": ["SKU TEA is listed twice; list it once."]},
    ),
    ({"lines": []}, "invalid", {"lines": ["This list may not be empty."]}),
    (
        {"lines": [{"sku": "TEA", "quantity": -1}]},
        "invalid",
        {"lines[0].quantity": ["Ensure this value is greater than or equal to 1."]},
    ),
    ({"dry_run": "yes"}, "invalid", {"dry_run": ["Must be true or false (a JSON boolean)."]}),
    (
        {"lines": [{"sku": "TEA", "quantity": 1, "warehouse": "EAST"}]},
        "invalid",
        {"lines[0].warehouse": ["Not accepted here. Accepted fields: sku, quantity."]},
    ),
]


@pytest.mark.parametrize("body, code, fields", BAD_RECEIPTS)
def test_bad_receipt_is_400_and_changes_nothing(api, main, tea, body, code, fields):
    ProductFactory(sku="MUG")
    place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5), number="PO-1")
    before = db_state()

    response = api.post(f"{POS}{po.pk}/receive/", body, format="json")

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["fields"]) == (code, fields)
    assert db_state() == before


def test_receipt_on_a_cancelled_po_is_409_and_changes_nothing(api, main, tea):
    place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5), number="PO-1")
    api.post(f"{POS}{po.pk}/cancel/", format="json")
    before = db_state()

    response = api.post(f"{POS}{po.pk}/receive/", {}, format="json")
    preview = api.post(f"{POS}{po.pk}/receive/", {"dry_run": True}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "code": "purchase_order_closed",
        "detail": "PO-1 is cancelled; nothing can be received on it.",
    }
    assert preview.status_code == 409
    assert db_state() == before


def test_receipt_on_a_fully_received_po_is_409(api, main, tea):
    po = purchase_order(main, ("TEA", 5), number="PO-1")
    api.post(f"{POS}{po.pk}/receive/", {}, format="json")
    before = db_state()

    response = api.post(f"{POS}{po.pk}/receive/", {"lines": [{"sku": "TEA", "quantity": 1}]}, format="json")

    assert response.status_code == 409
    assert response.json() == {"code": "purchase_order_closed", "detail": "PO-1 is already fully received."}
    assert db_state() == before


# --- permissions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "perms",
    [
        ("inventory.view_purchaseorder", "inventory.change_purchaseorder"),  # a buyer, not warehouse staff
        ("inventory.view_purchaseorder", "inventory.add_stockmovement"),  # can adjust stock, not touch POs
    ],
)
def test_receiving_needs_change_purchaseorder_and_add_stockmovement(main, tea, perms):
    place(("TEA", 2))
    po = purchase_order(main, ("TEA", 5))
    before = db_state()

    response = client_with(*perms, username="clerk").post(f"{POS}{po.pk}/receive/", {}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert db_state() == before
    staff = client_with(*WAREHOUSE_STAFF, username="staff")
    assert staff.post(f"{POS}{po.pk}/receive/", {}, format="json").status_code == 200


def test_each_write_needs_its_permission(main, tea):
    po = purchase_order(main, ("TEA", 5))
    reader = client_with("inventory.view_purchaseorder", username="reader")
    creator = client_with("inventory.add_purchaseorder", username="creator")
    before = db_state()

    assert reader.get(POS).status_code == 200
    assert reader.get(f"{POS}{po.pk}/").status_code == 200
    assert reader.post(POS, po_body({"sku": "TEA", "quantity": 1}), format="json").status_code == 403
    assert reader.patch(f"{POS}{po.pk}/", {"expected_date": day(3)}, format="json").status_code == 403
    assert reader.post(f"{POS}{po.pk}/cancel/").status_code == 403
    assert creator.get(POS).status_code == 403
    assert creator.get(f"{POS}{po.pk}/").status_code == 403
    assert creator.post(f"{POS}{po.pk}/cancel/").status_code == 403
    assert db_state() == before
    assert creator.post(POS, po_body({"sku": "TEA", "quantity": 1}), format="json").status_code == 201


def test_anonymous_is_401_json():
    response = APIClient().post(POS, {}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method, path", [("put", "{id}/"), ("delete", "{id}/"), ("get", "{id}/receive/")])
def test_other_methods_are_405_json(api, main, tea, method, path):
    po = purchase_order(main, ("TEA", 5))
    before = db_state()

    response = getattr(api, method)(POS + path.format(id=po.pk))

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert db_state() == before


def test_openapi_schema_describes_the_replenishment_endpoints():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    receive = schema["paths"]["/api/v1/purchase-orders/{id}/receive/"]["post"]
    assert set(receive["responses"]) == {"200", "400", "401", "403", "404", "409", "422"}
    assert receive["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PurchaseOrderReceiveRequest"
    }
    assert set(schema["paths"]["/api/v1/backorders/{id}/"]) == {"get", "patch"}
    assert set(schema["paths"]["/api/v1/policy/"]) == {"get", "patch"}
    assert {p["name"] for p in schema["paths"]["/api/v1/backorders/"]["get"]["parameters"]} == {
        "status",
        "sku",
        "customer",
        "eta_before",
        "eta_after",
        "overdue",
        "ordering",
        "page",
    }
