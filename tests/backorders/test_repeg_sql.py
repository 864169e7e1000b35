"""The set-based re-peg (backorders.repeg, PostgreSQL) agrees with the Python walk (backorders.pegging.peg) on
random queues and supplies: same lines changed, same ETAs, sources and reasons."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backorders.models import Backorder, BackorderPolicy
from backorders.policies import fill_strategy
from backorders.repeg import repeg
from backorders.services.eta import _repeg_in_python
from inventory.models import Product, PurchaseOrder, PurchaseOrderLine, Supplier, Warehouse
from orders.models import Customer, OrderLine, SalesOrder

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

line_st = st.tuples(
    st.integers(1, 5),  # quantity
    st.sampled_from([0, 0, 0, 1, -1]),  # pinned priority
    st.integers(0, 5),  # placed, hours ago
    st.sampled_from(["standard", "loyal", "vip"]),
    st.sampled_from(["", "", "lead_time", "purchase_order", "manual"]),  # current source
    st.integers(-3, 40),  # current ETA, days from today
)
supply_st = st.tuples(
    st.integers(1, 8),  # quantity
    st.integers(0, 7),  # received (capped below quantity+1)
    st.integers(-5, 30),  # PO expected date, days from today
    st.one_of(st.none(), st.integers(-5, 30)),  # line's own expected date
    st.sampled_from(["ordered", "ordered", "partially_received", "draft", "cancelled"]),
)
product_st = st.fixed_dictionaries(
    {
        "lines": st.lists(line_st, min_size=0, max_size=12),
        "supply": st.lists(supply_st, min_size=0, max_size=4),
        "lead_time": st.one_of(st.none(), st.integers(0, 20)),
        "supplier_lead": st.one_of(st.none(), st.integers(0, 20)),
        "discontinued": st.booleans(),
    }
)


def _build(products: list[dict]) -> list[int]:
    today = timezone.localdate()
    now = timezone.now()
    warehouse, _ = Warehouse.objects.get_or_create(code="PEG", defaults={"name": "Peg", "priority": 1})
    ids = []
    for p, spec in enumerate(products):
        supplier = (
            Supplier.objects.create(name=f"S{p}", lead_time_days=spec["supplier_lead"])
            if spec["supplier_lead"] is not None
            else None
        )
        product = Product.objects.create(
            sku=f"PEG-{p}",
            name="x",
            lead_time_days=spec["lead_time"],
            supplier=supplier,
            discontinued=spec["discontinued"],
        )
        ids.append(product.pk)
        for n, (quantity, received, po_days, line_days, status) in enumerate(spec["supply"]):
            po = PurchaseOrder.objects.create(
                number=f"PO-{p}-{n}", warehouse=warehouse, expected_date=today + timedelta(days=po_days), status=status
            )
            PurchaseOrderLine.objects.create(
                purchase_order=po,
                product=product,
                quantity=quantity,
                received=min(received, quantity),
                expected_date=today + timedelta(days=line_days) if line_days is not None else None,
            )
        for n, (quantity, priority, hours, tier, source, eta_days) in enumerate(spec["lines"]):
            customer, _ = Customer.objects.get_or_create(email=f"{tier}@peg.example", defaults={"tier": tier})
            order = SalesOrder.objects.create(
                number=f"SO-{p}-{n}", customer=customer, status="backordered", placed_at=now - timedelta(hours=hours)
            )
            line = OrderLine.objects.create(order=order, product=product, quantity=quantity, backordered=quantity)
            Backorder.objects.create(
                line=line,
                product=product,
                quantity=quantity,
                original_quantity=quantity,
                priority=priority,
                placed_at=order.placed_at,
                eta=today + timedelta(days=eta_days) if source else None,
                eta_source=source,
            )
    return ids


def _changes(run) -> list[tuple]:
    """What `run` would change, rolled back."""
    result: list[tuple] = []
    try:
        with transaction.atomic():
            result = sorted((c.backorder_id, c.old_eta, c.new_eta, c.old_source, c.new_source, c.reason) for c in run())
            raise _Undo
    except _Undo:
        pass
    return result


class _Undo(Exception):
    pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(products=st.lists(product_st, min_size=1, max_size=3), strategy=st.sampled_from(["fifo", "tier"]))
def test_set_based_repeg_matches_the_python_walk(products, strategy):
    try:
        with transaction.atomic():
            ids = _build(products)
            policy = BackorderPolicy.current()
            today = timezone.localdate()
            fill = fill_strategy(strategy)
            in_python = _changes(lambda: _repeg_in_python(product_ids=ids, today=today, policy=policy, strategy=fill))
            in_sql = _changes(
                lambda: repeg(product_ids=ids, today=today, handling_days=policy.handling_days, strategy=fill)
            )
            assert in_sql == in_python
            raise _Undo
    except _Undo:
        pass
