"""policy_update: validated, atomic, recorded, and it re-pegs every waiting line when ETAs move."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services import policy as policy_service
from backorders.services.policy import policy_update
from inventory.exceptions import InvalidInput

from ..inventory.factories import ProductFactory
from .factories import place

pytestmark = pytest.mark.django_db


def day(n: int):
    return timezone.localdate() + timedelta(days=n)


def test_update_sets_the_fields_and_who_changed_them():
    manager = User.objects.create_user("manager")

    policy = policy_update(changes={"status_update_days": 3, "coupon_code": "SORRY"}, acting_user=manager)

    stored = BackorderPolicy.objects.get()
    assert (stored.status_update_days, stored.coupon_code, stored.updated_by) == (3, "SORRY", manager)
    assert policy == stored


def test_handling_days_repeg_every_product_in_chunks(monkeypatch):
    monkeypatch.setattr(policy_service, "REPEG_CHUNK", 2)
    orders = []
    for i in range(5):
        ProductFactory(sku=f"P{i}", lead_time_days=10)
        orders.append(place((f"P{i}", 1)))
    calls = []
    original = policy_service.etas_recompute
    monkeypatch.setattr(
        policy_service, "etas_recompute", lambda **kwargs: calls.append(kwargs["product_ids"]) or original(**kwargs)
    )

    policy_update(changes={"handling_days": 4}, acting_user=None)

    assert [len(chunk) for chunk in calls] == [2, 2, 1]
    assert sorted(pk for chunk in calls for pk in chunk) == sorted(
        Backorder.objects.values_list("product_id", flat=True)
    )
    assert set(Backorder.objects.values_list("eta", "eta_source")) == {(day(14), "lead_time")}


@pytest.mark.parametrize(
    "changes, fields",
    [
        ({"fill_strategy": "lifo"}, {"fill_strategy": ["Value 'lifo' is not a valid choice."]}),
        ({"updated_at": None}, {"updated_at": ["Not an editable policy setting."]}),
        ({"id": 2}, {"id": ["Not an editable policy setting."]}),
    ],
)
def test_invalid_changes_raise_and_write_nothing(changes, fields):
    ProductFactory(sku="TEA", lead_time_days=10)
    place(("TEA", 1))
    before = (list(BackorderPolicy.objects.values()), EtaChange.objects.count())

    with pytest.raises(InvalidInput) as excinfo:
        policy_update(changes={"handling_days": 3, **changes}, acting_user=None)

    assert excinfo.value.fields == fields
    assert (list(BackorderPolicy.objects.values()), EtaChange.objects.count()) == before


def test_reading_a_missing_policy_writes_nothing_and_editing_it_creates_it(settings):
    BackorderPolicy.objects.all().delete()
    settings.BACKORDER_HANDLING_DAYS = 3

    policy = BackorderPolicy.current()

    assert (policy.pk, policy.handling_days) == (1, 3)
    assert not BackorderPolicy.objects.exists()
    policy_update(changes={"handling_days": 4}, acting_user=None)
    assert BackorderPolicy.objects.get().handling_days == 4
