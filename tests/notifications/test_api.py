"""GET notifications/ (?order=, ?kind=, ?status=): what was sent to whom and when, for staff with
notifications.view_notification."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from notifications.models import Notification

from ..api import client_with
from .factories import NotificationFactory

pytestmark = pytest.mark.django_db

NOTIFICATIONS = "/api/v1/notifications/"


@pytest.fixture
def api():
    return client_with("notifications.view_notification", username="cs-ada")


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_what_was_sent_to_whom_and_when_newest_first(api):
    older = NotificationFactory(
        order__number="A-1001",
        to_email="ann@example.com",
        kind=Notification.Kind.BACKORDER_CREATED,
        subject="Your order A-1001: some items are on backorder",
        status=Notification.Status.SENT,
        sent_at=timezone.now(),
    )
    newer = NotificationFactory(order=None, customer=older.customer, to_email="ann@example.com")

    response = api.get(NOTIFICATIONS)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    assert body["results"] == [
        {
            "id": newer.pk,
            "order": None,
            "kind": "status_update",
            "status": "pending",
            "to": "ann@example.com",
            "subject": newer.subject,
            "created_at": iso(newer.created_at),
            "sent_at": None,
        },
        {
            "id": older.pk,
            "order": "A-1001",
            "kind": "backorder_created",
            "status": "sent",
            "to": "ann@example.com",
            "subject": "Your order A-1001: some items are on backorder",
            "created_at": iso(older.created_at),
            "sent_at": iso(older.sent_at),
        },
    ]


def test_filters_by_order_number_kind_and_status(api):
    a = NotificationFactory(order__number="A-1001", kind=Notification.Kind.DELAY_NOTICE)
    b = NotificationFactory(order=a.order, kind=Notification.Kind.BACKORDER_FILLED, status=Notification.Status.SENT)
    c = NotificationFactory(order__number="B-2002", kind=Notification.Kind.DELAY_NOTICE)

    assert sorted(ids(api.get(NOTIFICATIONS, {"order": "A-1001"}))) == sorted([a.pk, b.pk])
    assert sorted(ids(api.get(NOTIFICATIONS, {"kind": "delay_notice"}))) == sorted([a.pk, c.pk])
    assert ids(api.get(NOTIFICATIONS, {"status": "sent"})) == [b.pk]
    assert ids(api.get(NOTIFICATIONS, {"order": "A-1001", "kind": "delay_notice", "status": "pending"})) == [a.pk]
    assert ids(api.get(NOTIFICATIONS, {"order": "NOPE"})) == []


def test_an_unknown_kind_or_status_is_a_400_naming_the_field(api):
    response = api.get(NOTIFICATIONS, {"kind": "newsletter", "status": "lost"})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"kind", "status"}


def test_ordering_by_sent_at(api):
    now = timezone.now()
    late = NotificationFactory(status=Notification.Status.SENT, sent_at=now)
    early = NotificationFactory(status=Notification.Status.SENT, sent_at=now - timedelta(hours=1))

    assert ids(api.get(NOTIFICATIONS, {"ordering": "sent_at"})) == [early.pk, late.pk]


def test_list_costs_a_constant_number_of_queries(api):
    NotificationFactory()
    with CaptureQueriesContext(connection) as one:
        api.get(NOTIFICATIONS)
    NotificationFactory.create_batch(10)
    with CaptureQueriesContext(connection) as eleven:
        response = api.get(NOTIFICATIONS)

    assert len(response.json()["results"]) == 11
    assert len(eleven) == len(one)


def test_get_one_and_404_naming_it(api):
    notification = NotificationFactory(order__number="A-1001")

    assert api.get(f"{NOTIFICATIONS}{notification.pk}/").json()["order"] == "A-1001"
    missing = api.get(f"{NOTIFICATIONS}{notification.pk + 1000}/")
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "detail": f"No notification with id '{notification.pk + 1000}'."}


def test_read_only(api):
    notification = NotificationFactory()

    assert api.post(NOTIFICATIONS, {}, format="json").status_code == 405
    assert api.delete(f"{NOTIFICATIONS}{notification.pk}/").status_code == 405
    assert Notification.objects.count() == 1


def test_without_view_notification_is_403_json():
    NotificationFactory()
    client = client_with("orders.view_salesorder", username="warehouse")

    response = client.get(NOTIFICATIONS)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anonymous_is_401_json():
    NotificationFactory()

    response = APIClient().get(NOTIFICATIONS)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_openapi_schema_describes_the_endpoint():
    response = APIClient().get("/api/schema/", {"format": "json"})

    schema = json.loads(response.content)
    operation = schema["paths"]["/api/v1/notifications/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"order", "kind", "status", "page", "ordering"}
    assert set(operation["responses"]) == {"200", "400", "401", "403"}
    component = schema["components"]["schemas"]["Notification"]
    assert list(component["properties"]) == ["id", "order", "kind", "status", "to", "subject", "created_at", "sent_at"]
