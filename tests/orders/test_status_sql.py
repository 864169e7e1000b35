"""The set-based status refresh (orders_refresh_status_statement, run with the lines' writes in one statement) gives
every order the status status_for gives it from its lines as written: the SQL rule and the Python rule agree."""

import itertools

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from inventory.dbutils import bulk_add_statement, run_together
from orders.models import OrderLine, SalesOrder
from orders.services import orders_refresh_status_statement, status_for

from ..inventory.factories import ProductFactory
from ..notifications.factories import OrderLineFactory, SalesOrderFactory

pytestmark = pytest.mark.django_db

FIELDS = ("allocated", "shipped", "backordered", "cancelled")
# Every way to split a line of 2 units over allocated, shipped, backordered and cancelled.
SPLITS = [dict(zip(FIELDS, parts, strict=True)) for parts in itertools.product(range(3), repeat=4) if sum(parts) == 2]


def _status_from_lines(order: SalesOrder) -> str:
    sums = order.lines.aggregate(*(Sum(f) for f in (*FIELDS, "quantity")))
    return status_for(
        allocated=sums["allocated__sum"],
        shipped=sums["shipped__sum"],
        backordered=sums["backordered__sum"],
        cancelled=sums["cancelled__sum"],
        quantity=sums["quantity__sum"],
    )


def test_the_status_written_with_the_lines_is_status_for_of_the_lines_as_written():
    products = [ProductFactory(sku="GRID-1"), ProductFactory(sku="GRID-2")]
    orders: list[SalesOrder] = []
    for first, second in itertools.product(SPLITS, [None, *SPLITS]):
        order = SalesOrderFactory(status=SalesOrder.Status.BACKORDERED)
        for product, split in zip(products, (first, second), strict=True):
            if split is not None:
                OrderLineFactory(order=order, product=product, quantity=2, **split)
        orders.append(order)
    # A fill's change: one waiting unit of each order's first waiting line allocated.
    deltas: dict[int, dict[str, int]] = {}
    for order in orders:
        line = order.lines.filter(backordered__gt=0).order_by("pk").first()
        if line is not None:
            deltas[line.pk] = {"allocated": 1, "backordered": -1}
    assert len(deltas) > 50 and len(deltas) < len(orders)  # some orders change, some keep their lines as they are

    with CaptureQueriesContext(connection) as ctx:
        run_together(
            bulk_add_statement(OrderLine, deltas),
            orders_refresh_status_statement(order_ids=[o.pk for o in orders], line_deltas=deltas),
        )

    assert len(ctx.captured_queries) == (1 if connection.vendor == "postgresql" else 3)
    statuses = dict(SalesOrder.objects.filter(pk__in=[o.pk for o in orders]).values_list("pk", "status"))
    expected = {o.pk: _status_from_lines(o) for o in orders}
    assert statuses == expected
    assert set(expected.values()) == set(SalesOrder.Status.values)  # every status of the rule was reached


def test_orders_whose_status_stays_are_not_written():
    product = ProductFactory(sku="STAY")
    order = SalesOrderFactory(status=SalesOrder.Status.BACKORDERED)
    line = OrderLineFactory(order=order, product=product, quantity=3)
    statement = orders_refresh_status_statement(order_ids=[order.pk], line_deltas={})
    assert statement.run() == (0 if connection.vendor == "postgresql" else 1)
    order.refresh_from_db()
    assert order.status == SalesOrder.Status.BACKORDERED
    assert orders_refresh_status_statement(order_ids=[], line_deltas={line.pk: {"allocated": 1}}) is None
