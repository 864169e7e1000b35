"""Idempotency-Key on POST orders/ and POST purchase-orders/{id}/receive/: a retry runs nothing and gets the
first response; a reused key with another body is a 422; keys are per caller and expire."""

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import F, Sum
from django.test import override_settings
from django.utils import timezone

from backorders import idempotency
from backorders.idempotency import (
    IdempotencyKeyReused,
    StoredResponse,
    idempotency_keys_purge,
    idempotent_call,
    request_hash,
)
from backorders.models import Backorder, IdempotencyKey
from inventory.models import StockLevel, StockMovement
from orders.models import Allocation, SalesOrder

from ..api import client_with, user_with
from ..concurrency import run_concurrently
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .factories import place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"
PURCHASE_ORDERS = "/api/v1/purchase-orders/"
STOREFRONT_PERMS = ("orders.add_salesorder", "orders.view_salesorder")
RECEIVER_PERMS = ("inventory.view_purchaseorder", "inventory.change_purchaseorder", "inventory.add_stockmovement")


def order_body(quantity: int = 10, email: str = "ada@example.com") -> dict:
    return {"customer": {"email": email, "name": "Ada Lovelace"}, "lines": [{"sku": "MUG", "quantity": quantity}]}


def keyed(key: str) -> dict:
    return {"HTTP_IDEMPOTENCY_KEY": key}


def state() -> dict:
    """Everything placing an order or receiving could write; compared before and after a replay."""
    return {
        "orders": list(SalesOrder.objects.order_by("pk").values_list("pk", "number", "status")),
        "allocations": list(Allocation.objects.order_by("pk").values_list("pk", "quantity")),
        "backorders": list(Backorder.objects.order_by("pk").values_list("pk", "quantity", "status")),
        "stock": list(StockLevel.objects.order_by("pk").values_list("pk", "on_hand", "allocated")),
        "movements": StockMovement.objects.count(),
    }


@pytest.fixture
def mug():
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 6)
    return product


@pytest.fixture
def api():
    return client_with(*STOREFRONT_PERMS, username="storefront")


# --- POST orders/ -----------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_response_and_places_nothing(api, mug, assert_invariants):
    first = api.post(ORDERS, order_body(10), format="json", **keyed("order-ada-1"))
    after_first = state()

    retry = api.post(ORDERS, order_body(10), format="json", **keyed("order-ada-1"))

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Location"] == first["Location"] == f"http://testserver{ORDERS}{first.json()['number']}/"
    assert retry["Idempotent-Replayed"] == "true"
    assert not first.has_header("Idempotent-Replayed")
    assert state() == after_first
    assert SalesOrder.objects.count() == 1
    assert Allocation.objects.aggregate(units=Sum("quantity"))["units"] == 6  # allocated once
    assert StockLevel.objects.get(product=mug).allocated == 6
    assert Backorder.objects.get().quantity == 4
    key = IdempotencyKey.objects.get()
    assert (key.key, key.status, key.response_status, key.endpoint) == (
        "order-ada-1",
        "completed",
        201,
        f"POST {ORDERS}",
    )
    assert key.request_hash == request_hash(order_body(10))
    assert_invariants()


def test_the_same_body_in_another_key_order_is_the_same_request(api, mug):
    body = order_body(2)
    reordered = {"lines": body["lines"], "customer": {"name": "Ada Lovelace", "email": "ada@example.com"}}

    first = api.post(ORDERS, body, format="json", **keyed("k1"))
    retry = api.post(ORDERS, reordered, format="json", **keyed("k1"))

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert SalesOrder.objects.count() == 1


def test_same_key_with_a_different_body_is_422_and_changes_nothing(api, mug):
    api.post(ORDERS, order_body(2), format="json", **keyed("k1"))
    before = state()

    response = api.post(ORDERS, order_body(3), format="json", **keyed("k1"))

    assert response.status_code == 422
    assert response.json() == {
        "code": "idempotency_key_reused",
        "detail": "The Idempotency-Key 'k1' was already used with a different body. Use a new key for a new "
        "request; repeat a request with its key only to retry it unchanged.",
    }
    assert state() == before


def test_keys_belong_to_the_caller_another_user_with_the_same_key_places_its_own_order(api, mug):
    other = client_with(*STOREFRONT_PERMS, username="other-shop")

    first = api.post(ORDERS, order_body(2), format="json", **keyed("shared-key"))
    second = other.post(ORDERS, order_body(2), format="json", **keyed("shared-key"))

    assert first.status_code == second.status_code == 201
    assert not second.has_header("Idempotent-Replayed")
    assert first.json()["number"] != second.json()["number"]
    assert SalesOrder.objects.count() == 2
    assert StockLevel.objects.get(product=mug).allocated == 4


def test_without_the_header_every_request_runs(api, mug):
    api.post(ORDERS, order_body(1), format="json")
    api.post(ORDERS, order_body(1), format="json")

    assert SalesOrder.objects.count() == 2
    assert IdempotencyKey.objects.count() == 0


@override_settings(IDEMPOTENCY_KEY_TTL_HOURS=2)
def test_an_expired_key_is_forgotten_and_runs_again(api, mug):
    first = api.post(ORDERS, order_body(1), format="json", **keyed("k1"))
    IdempotencyKey.objects.update(created_at=F("created_at") - timedelta(hours=2, seconds=1))

    again = api.post(ORDERS, order_body(1), format="json", **keyed("k1"))

    assert again.status_code == 201
    assert not again.has_header("Idempotent-Replayed")
    assert again.json()["number"] != first.json()["number"]
    assert SalesOrder.objects.count() == 2
    assert IdempotencyKey.objects.get().response_body["number"] == again.json()["number"]


def test_a_key_inside_its_lifetime_still_replays(api, mug):
    api.post(ORDERS, order_body(1), format="json", **keyed("k1"))
    IdempotencyKey.objects.update(created_at=F("created_at") - timedelta(hours=23, minutes=59))

    retry = api.post(ORDERS, order_body(1), format="json", **keyed("k1"))

    assert retry["Idempotent-Replayed"] == "true"
    assert SalesOrder.objects.count() == 1


def test_a_domain_error_is_not_kept_the_key_is_free_for_a_retry_that_can_succeed(api):
    product = ProductFactory(sku="MUG", backorders_allowed=False)
    warehouse = WarehouseFactory(code="MAIN")
    stock(product, warehouse, 1)
    before = state()

    refused = api.post(ORDERS, order_body(3), format="json", **keyed("k1"))

    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_stock"
    assert state() == before
    assert IdempotencyKey.objects.count() == 0

    stock(product, warehouse, 2)
    retry = api.post(ORDERS, order_body(3), format="json", **keyed("k1"))

    assert retry.status_code == 201
    assert not retry.has_header("Idempotent-Replayed")
    assert SalesOrder.objects.count() == 1


def test_a_validation_error_claims_nothing_so_the_corrected_request_may_use_the_key(api, mug):
    invalid = api.post(ORDERS, order_body(0), format="json", **keyed("k1"))
    corrected = api.post(ORDERS, order_body(1), format="json", **keyed("k1"))

    assert invalid.status_code == 400
    assert invalid.json()["fields"] == {"lines[0].quantity": ["Ensure this value is greater than or equal to 1."]}
    assert corrected.status_code == 201


def test_malformed_json_with_a_key_is_400_and_claims_nothing(api, mug):
    response = api.post(ORDERS, data="{nope", content_type="application/json", **keyed("k1"))

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_key_is_400_naming_the_header(api, mug, key):
    response = api.post(ORDERS, order_body(1), format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "Idempotency-Key": ["Must be 1 to 255 visible ASCII characters without spaces (e.g. a UUID)."]
    }
    assert SalesOrder.objects.count() == 0


def test_a_key_used_for_an_order_cannot_be_reused_to_receive(mug):
    client = client_with(*STOREFRONT_PERMS, *RECEIVER_PERMS, username="both")
    po = purchase_order(WarehouseFactory(code="MAIN"), ("MUG", 5))
    client.post(ORDERS, order_body(1), format="json", **keyed("k1"))
    before = state()

    response = client.post(f"{PURCHASE_ORDERS}{po.pk}/receive/", {}, format="json", **keyed("k1"))

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["detail"].startswith(f"The Idempotency-Key 'k1' was already used for POST {ORDERS}.")
    assert state() == before


# --- POST purchase-orders/{id}/receive/ -------------------------------------------------------------


def test_a_retried_receipt_receives_and_fills_once(mug, assert_invariants):
    place(("MUG", 10), number="SO-1")  # 6 allocated, 4 waiting
    po = purchase_order(WarehouseFactory(code="MAIN"), ("MUG", 5))
    receiver = client_with(*RECEIVER_PERMS, username="warehouse")
    url = f"{PURCHASE_ORDERS}{po.pk}/receive/"

    first = receiver.post(url, {"lines": [{"sku": "MUG", "quantity": 3}]}, format="json", **keyed("rcv-1"))
    after_first = state()
    retry = receiver.post(url, {"lines": [{"sku": "MUG", "quantity": 3}]}, format="json", **keyed("rcv-1"))

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert first.json()["received"] == {"MUG": 3}
    assert state() == after_first
    assert StockMovement.objects.filter(movement_type=StockMovement.Type.RECEIPT).count() == 1
    assert StockLevel.objects.get(product=mug).on_hand == 9
    assert Backorder.objects.get().quantity == 1
    assert_invariants()


# --- the service: time is injected ------------------------------------------------------------------


def test_expiry_follows_the_injected_clock():
    user = user_with(username="clock")
    t0 = timezone.now()
    runs: list[int] = []

    def run() -> StoredResponse:
        runs.append(1)
        return StoredResponse(status=201, body={"run": len(runs)})

    def call(now):
        return idempotent_call(user_id=user.pk, key="k", endpoint="POST /x/", body={"a": 1}, run=run, now=now)

    assert call(t0) == (StoredResponse(201, {"run": 1}), False)
    assert call(t0 + timedelta(hours=23, minutes=59)) == (StoredResponse(201, {"run": 1}), True)
    assert call(t0 + timedelta(hours=24)) == (StoredResponse(201, {"run": 2}), False)
    assert len(runs) == 2
    with pytest.raises(IdempotencyKeyReused):
        idempotent_call(
            user_id=user.pk, key="k", endpoint="POST /x/", body={"a": 2}, run=run, now=t0 + timedelta(hours=25)
        )
    assert len(runs) == 2


def test_purge_deletes_only_expired_keys():
    user = user_with(username="purge")
    t0 = timezone.now()
    for key, age in (("old", 25), ("young", 1)):
        idempotent_call(
            user_id=user.pk,
            key=key,
            endpoint="POST /x/",
            body={},
            run=lambda: StoredResponse(200, {}),
            now=t0 - timedelta(hours=age),
        )

    assert idempotency_keys_purge(now=t0) == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["young"]


def test_expired_keys_are_purged_nightly_by_beat(settings):
    from backorders.tasks import purge_idempotency_keys

    entry = settings.CELERY_BEAT_SCHEDULE["purge-idempotency-keys-nightly"]
    assert entry["task"] == purge_idempotency_keys.name
    user = user_with(username="nightly")
    idempotent_call(
        user_id=user.pk, key="stale", endpoint="POST /x/", body={}, run=lambda: StoredResponse(200, {}),
        now=timezone.now() - timedelta(hours=25),
    )  # fmt: skip
    assert purge_idempotency_keys.delay().get() == 1  # eager in tests: the task itself runs
    assert not IdempotencyKey.objects.filter(key="stale").exists()


# --- concurrency (real PostgreSQL, real threads) ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_identical_requests_at_once_place_one_order_and_allocate_once(mug, assert_invariants):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=user_with(*STOREFRONT_PERMS, username="storefront")).key

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client.post(ORDERS, order_body(10), format="json", **keyed("same-key"))

    responses = run_concurrently([post] * 8, threads=8)

    assert [r for r in responses if isinstance(r, Exception)] == []
    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.json()["number"] for r in responses}) == 1
    assert sum(not r.has_header("Idempotent-Replayed") for r in responses) == 1
    assert SalesOrder.objects.count() == 1
    assert Allocation.objects.aggregate(units=Sum("quantity"))["units"] == 6
    assert StockLevel.objects.get(product=mug).allocated == 6
    assert Backorder.objects.get().quantity == 4
    assert IdempotencyKey.objects.get().status == "completed"
    assert_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_identical_receipts_at_once_receive_once(mug, assert_invariants):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    place(("MUG", 10), number="SO-1")
    po = purchase_order(WarehouseFactory(code="MAIN"), ("MUG", 5))
    token = Token.objects.create(user=user_with(*RECEIVER_PERMS, username="warehouse")).key

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return client.post(f"{PURCHASE_ORDERS}{po.pk}/receive/", {}, format="json", **keyed("rcv"))

    responses = run_concurrently([post] * 8, threads=8)

    assert [r.status_code for r in responses] == [200] * 8
    assert sum(not r.has_header("Idempotent-Replayed") for r in responses) == 1
    assert StockMovement.objects.filter(movement_type=StockMovement.Type.RECEIPT).count() == 1
    assert StockLevel.objects.get(product=mug).on_hand == 11
    assert Backorder.objects.get().status == "filled"
    assert_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_retry_that_waits_too_long_is_409_in_progress_and_a_dead_first_request_does_not_block_the_key(
    mug, monkeypatch
):
    """A first request still holds the key (its row lock); a retry waits LOCK_WAIT_SECONDS, then gets 409 and
    changes nothing. When the holder goes away without finishing (a crash rolls its transaction back), the
    key is unlocked and still in progress: the next retry runs the request."""
    monkeypatch.setattr(idempotency, "LOCK_WAIT_SECONDS", 0.2)
    api = client_with(*STOREFRONT_PERMS, username="storefront")
    user_id = User.objects.get(username="storefront").pk
    claim = IdempotencyKey.objects.create(
        user_id=user_id,
        key="slow",
        endpoint=f"POST {ORDERS}",
        request_hash=request_hash(order_body(1)),
        created_at=timezone.now(),
    )
    holding, done = threading.Event(), threading.Event()

    def first_request_in_flight() -> None:
        try:
            with transaction.atomic():
                list(IdempotencyKey.objects.select_for_update().filter(pk=claim.pk))
                holding.set()
                done.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=first_request_in_flight)
    holder.start()
    assert holding.wait(10)
    try:
        waiting = api.post(ORDERS, order_body(1), format="json", **keyed("slow"))
    finally:
        done.set()
        holder.join()

    assert waiting.status_code == 409
    assert waiting.json()["code"] == "idempotency_request_in_progress"
    assert SalesOrder.objects.count() == 0
    assert IdempotencyKey.objects.get().status == "in_progress"

    after = api.post(ORDERS, order_body(1), format="json", **keyed("slow"))

    assert after.status_code == 201
    assert not after.has_header("Idempotent-Replayed")
    assert SalesOrder.objects.count() == 1
    assert IdempotencyKey.objects.get().status == "completed"
