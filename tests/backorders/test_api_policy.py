"""GET/PATCH policy/: the one backorder policy, edited by managers; a change that moves ETAs re-pegs them."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backorders.models import Backorder, BackorderPolicy, EtaChange
from orders.models import Customer

from ..api import client_with
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/policy/"
MANAGER = ("backorders.view_backorderpolicy", "backorders.change_backorderpolicy")

DEFAULTS = {
    "fill_strategy": "fifo",
    "handling_days": 1,
    "eta_change_threshold_days": 2,
    "eta_quiet_minutes": 30,
    "cancellation_offer_days": 14,
    "status_update_days": 7,
    "rolling_backorder_days": 30,
    "status_link_days": 60,
    "coupon_code": "",
    "compliance_profile": "us_ftc",
}


def day(n: int):
    return timezone.localdate() + timedelta(days=n)


@pytest.fixture
def api():
    return client_with(*MANAGER, username="manager")


def policy_state() -> dict:
    return {
        "policy": list(BackorderPolicy.objects.values()),
        "backorders": list(Backorder.objects.order_by("pk").values_list("pk", "eta", "eta_source")),
        "eta_changes": EtaChange.objects.count(),
    }


def etas(*orders) -> list[tuple]:
    rows = {b.line.order_id: (b.eta, b.eta_source) for b in Backorder.objects.select_related("line")}
    return [rows[order.pk] for order in orders]


def test_get_returns_every_setting(api):
    response = api.get(POLICY)

    assert response.status_code == 200
    body = response.json()
    updated_at = body.pop("updated_at")
    assert body == {**DEFAULTS, "updated_by": None}
    assert updated_at == BackorderPolicy.objects.get().updated_at.isoformat().replace("+00:00", "Z")


def test_patch_changes_the_given_settings_and_records_who(api):
    response = api.patch(POLICY, {"coupon_code": "SORRY10", "cancellation_offer_days": 21}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    del body["updated_at"]
    assert body == {**DEFAULTS, "coupon_code": "SORRY10", "cancellation_offer_days": 21, "updated_by": "manager"}
    policy = BackorderPolicy.objects.get()
    assert (policy.coupon_code, policy.cancellation_offer_days) == ("SORRY10", 21)
    assert policy.updated_by.username == "manager"
    assert api.get(POLICY).json()["coupon_code"] == "SORRY10"


def test_changing_handling_days_moves_every_eta(api, assert_invariants):
    ProductFactory(sku="TEA", lead_time_days=30)
    ProductFactory(sku="MUG", lead_time_days=5)
    covered, behind, other = place(("TEA", 5)), place(("TEA", 5)), place(("MUG", 1))
    purchase_order(WarehouseFactory(), ("TEA", 5), days=10)
    assert etas(covered, behind, other) == [
        (day(11), "purchase_order"),
        (day(31), "lead_time"),
        (day(6), "lead_time"),
    ]
    changes_before = EtaChange.objects.count()

    response = api.patch(POLICY, {"handling_days": 3}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["handling_days"] == 3
    assert etas(covered, behind, other) == [
        (day(13), "purchase_order"),
        (day(33), "lead_time"),
        (day(8), "lead_time"),
    ]
    assert EtaChange.objects.count() - changes_before == 3
    assert api.get("/api/v1/policy/").json()["handling_days"] == 3
    assert_invariants()


def test_a_manual_eta_stays_when_handling_days_change(api):
    ProductFactory(sku="TEA", lead_time_days=30)
    order = place(("TEA", 1))
    Backorder.objects.filter(line__order=order).update(eta=day(4), eta_source="manual")

    api.patch(POLICY, {"handling_days": 5}, format="json")

    assert etas(order) == [(day(4), "manual")]


def test_changing_the_fill_strategy_repegs_in_the_new_queue_order(api):
    ProductFactory(sku="TEA", lead_time_days=30)
    standard = place(("TEA", 3))
    vip = place(("TEA", 3), customer=CustomerFactory(tier=Customer.Tier.VIP))
    purchase_order(WarehouseFactory(), ("TEA", 3), days=10)
    assert etas(standard, vip) == [(day(11), "purchase_order"), (day(31), "lead_time")]

    response = api.patch(POLICY, {"fill_strategy": "tier"}, format="json")

    assert response.status_code == 200
    assert etas(standard, vip) == [(day(31), "lead_time"), (day(11), "purchase_order")]


def test_a_setting_that_does_not_move_etas_writes_no_eta_change(api):
    ProductFactory(sku="TEA", lead_time_days=30)
    place(("TEA", 3))
    changes_before = EtaChange.objects.count()

    api.patch(POLICY, {"eta_quiet_minutes": 5, "handling_days": 1, "fill_strategy": "fifo"}, format="json")

    assert EtaChange.objects.count() == changes_before


ACCEPTED = (
    "Not accepted here. Accepted fields: fill_strategy, handling_days, eta_change_threshold_days, eta_quiet_minutes, "
    "cancellation_offer_days, status_update_days, rolling_backorder_days, status_link_days, coupon_code, "
    "compliance_profile."
)

BAD_PATCHES = [
    ({"fill_strategy": "lifo"}, {"fill_strategy": ['"lifo" is not a valid choice.']}),
    ({"compliance_profile": "mars"}, {"compliance_profile": ['"mars" is not a valid choice.']}),
    (
        {"handling_days": "2"},
        {"handling_days": ["Must be a whole number (a JSON integer, not a string, decimal or boolean)."]},
    ),
    ({"handling_days": -1}, {"handling_days": ["Ensure this value is greater than or equal to 0."]}),
    ({"status_link_days": 40_000}, {"status_link_days": ["Ensure this value is less than or equal to 32767."]}),
    ({"handling_days": None}, {"handling_days": ["This field may not be null."]}),
    ({"coupon_code": "X" * 41}, {"coupon_code": ["Ensure this field has no more than 40 characters."]}),
    ({"handling_days": 2, "updated_by": "someone"}, {"updated_by": [ACCEPTED]}),
    ({"handling_day": 2}, {"handling_day": [ACCEPTED]}),
]


@pytest.mark.parametrize("body, fields", BAD_PATCHES)
def test_bad_patch_is_400_naming_the_field_and_changes_nothing(api, body, fields):
    ProductFactory(sku="TEA", lead_time_days=30)
    place(("TEA", 3))
    before = policy_state()

    response = api.patch(POLICY, body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["fields"] == fields
    assert policy_state() == before


def test_reading_needs_view_and_changing_needs_change_permission():
    ProductFactory(sku="TEA", lead_time_days=30)
    place(("TEA", 3))
    reader = client_with("backorders.view_backorderpolicy", username="reader")
    editor = client_with("backorders.change_backorderpolicy", username="editor")
    before = policy_state()

    refused = reader.patch(POLICY, {"handling_days": 4}, format="json")

    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert policy_state() == before
    assert reader.get(POLICY).status_code == 200
    assert editor.get(POLICY).status_code == 403
    assert editor.patch(POLICY, {"handling_days": 4}, format="json").status_code == 200


def test_anonymous_is_401_json():
    before = policy_state()

    response = APIClient().patch(POLICY, {"handling_days": 4}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert policy_state() == before


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_405_json(api, method):
    response = getattr(api, method)(POLICY, {}, format="json")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
