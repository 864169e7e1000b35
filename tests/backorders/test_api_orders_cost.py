"""What an order costs the API beyond the placement itself, and that the cheaper paths answer the same.

POST /api/v1/orders/ is the placement service plus: the token read (with the user and their permissions, one
statement: config/api/authentication.py), and one read of the placed order for the response. The response is
written out by hand (OrderSerializer.to_representation) from a read with a fixed statement
(orders.selectors.order_with_lines_by_pk); both are compared here with what they replaced: the ModelSerializer
built from the declared fields, and the ORM read with select_related / prefetch_related.
"""

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from backorders.api.serializers import CustomerSerializer, OrderLineSerializer, OrderSerializer
from backorders.models import Backorder
from backorders.services import LineRequest, order_cancel, stock_adjust_and_fill
from inventory.models import Warehouse
from orders.models import Customer, OrderLine, SalesOrder
from orders.selectors import order_with_lines, order_with_lines_by_pk, order_with_lines_of

from ..api import client_with, token_client
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from ..orders.factories import CustomerFactory
from .factories import place

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders/"


class ModelOrderSerializer(serializers.ModelSerializer):
    """OrderSerializer as it was declared before its representation was written out (the reference)."""

    customer = CustomerSerializer(read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = SalesOrder
        fields = OrderSerializer.Meta.fields
        read_only_fields = fields


@pytest.fixture
def main() -> Warehouse:
    return WarehouseFactory(code="MAIN", priority=1)


@pytest.fixture
def every_kind_of_line(main) -> SalesOrder:
    """One order with a line allocated whole, one waiting with an ETA, one whose backorder was filled, and one
    partly cancelled; a VIP customer, a ship-by date and credit applied."""
    for sku, units in (("MUG", 5), ("KETTLE", 1), ("CUP", 4)):
        stock(ProductFactory(sku=sku), main, units)
    ProductFactory(sku="LID")  # none in stock
    customer = CustomerFactory(email="vip@example.com", name="Vera", tier=Customer.Tier.VIP)
    order = place(
        ("MUG", 2),
        ("KETTLE", 3),
        ("LID", 2),
        ("CUP", 4),
        customer=customer,
        ship_by=timezone.localdate() + datetime.timedelta(days=30),
        credit_applied=True,
    )
    lid = OrderLine.objects.get(order=order, product__sku="LID")
    stock_adjust_and_fill(product=lid.product, warehouse=main, delta=2, reason="Found", acting_user=None, source="test")
    order_cancel(order=order, lines=[LineRequest(sku="CUP", quantity=1)], acting_user=None)
    statuses = set(Backorder.objects.filter(line__order=order).values_list("status", flat=True))
    assert statuses == {Backorder.Status.WAITING, Backorder.Status.FILLED}  # the order has what its name says
    return order


def _fields(instance) -> dict | None:
    if instance is None:
        return None
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def _backorder(line: OrderLine) -> Backorder | None:
    try:
        return line.backorder
    except Backorder.DoesNotExist:
        return None


def test_order_with_lines_by_pk_reads_what_the_orm_reads_in_one_statement(every_kind_of_line):
    expected = order_with_lines().get(pk=every_kind_of_line.pk)
    expected_lines = list(expected.lines.all())

    with CaptureQueriesContext(connection) as read:
        order = order_with_lines_by_pk(every_kind_of_line.pk)
    with CaptureQueriesContext(connection) as followed:
        customer, lines = order.customer, list(order.lines.all())
        related = [(line.order, line.product, _backorder(line)) for line in lines]
        back_to_line = [backorder.line for _, _, backorder in related if backorder is not None]

    assert len(read) == 1
    assert len(followed) == 0
    assert _fields(order) == _fields(expected)
    assert _fields(customer) == _fields(expected.customer)
    assert [_fields(line) for line in lines] == [_fields(line) for line in expected_lines]
    assert [_fields(product) for _, product, _ in related] == [_fields(line.product) for line in expected_lines]
    assert [_fields(backorder) for _, _, backorder in related] == [_fields(_backorder(x)) for x in expected_lines]
    assert [b is None for _, _, b in related] == [True, False, False, True]  # MUG, KETTLE (waits), LID (filled), CUP
    assert all(line_order is order for line_order, _, _ in related)
    assert back_to_line == lines[1:3]
    assert all(not x._state.adding and x._state.db == "default" for x in [order, customer, *lines])


def test_order_with_lines_by_pk_of_a_line_without_backorder_and_of_an_order_without_lines(main):
    stock(ProductFactory(sku="MUG"), main, 5)
    allocated = place(("MUG", 1))
    empty = SalesOrder.objects.create(number="SO-EMPTY", customer=CustomerFactory())

    line = order_with_lines_by_pk(allocated.pk).lines.all()[0]
    with CaptureQueriesContext(connection) as followed, pytest.raises(Backorder.DoesNotExist):
        line.backorder  # noqa: B018  cached as absent, like select_related's
    assert len(followed) == 0
    assert list(order_with_lines_by_pk(empty.pk).lines.all()) == []
    with pytest.raises(SalesOrder.DoesNotExist):
        order_with_lines_by_pk(empty.pk + 1000)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_order_representation_is_what_the_model_serializer_gave(every_kind_of_line, main, zone):
    stock(ProductFactory(sku="PLAIN"), main, 1)
    plain = place(("PLAIN", 1))  # no ship-by, standard tier, allocated
    render = JSONRenderer().render
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for order in (every_kind_of_line, plain):
            by_selector = order_with_lines_by_pk(order.pk)
            listed = order_with_lines().get(pk=order.pk)
            assert OrderSerializer(by_selector).data == ModelOrderSerializer(listed).data
            assert render(OrderSerializer(by_selector).data) == render(ModelOrderSerializer(listed).data)
        many = order_with_lines().order_by("pk")
        assert render(OrderSerializer(many, many=True).data) == render(ModelOrderSerializer(many, many=True).data)


def _service_statements(sku: str, email: str) -> int:
    with CaptureQueriesContext(connection) as placed:
        place((sku, 1), customer=CustomerFactory.build(email=email, name="Ref"))
    return len(placed)


@pytest.mark.parametrize("units_in_stock", [10, 0], ids=["allocated", "backordered"])
def test_post_order_costs_the_placement_plus_the_token_read_and_a_read_unless_written_in_one_statement(
    main, units_in_stock
):
    mug = ProductFactory(sku="MUG")
    if units_in_stock:
        stock(mug, main, units_in_stock)
    api = client_with("orders.add_salesorder", username="storefront")
    body = {"customer": {"email": "new@example.com", "name": "New"}, "lines": [{"sku": "MUG", "quantity": 1}]}
    api.post(ORDERS, {**body, "customer": {"email": "warm@example.com", "name": "W"}}, format="json")
    service = _service_statements("MUG", "service@example.com")

    with CaptureQueriesContext(connection) as posted:
        response = api.post(ORDERS, body, format="json")

    assert response.status_code == 201, response.json()
    sql = [query["sql"] for query in posted]
    assert '"authtoken_token"' in sql[0] and '"auth_permission"' in sql[0]  # the token, its user, their permissions
    if units_in_stock:  # one line allocated whole in one statement: placement hands over the order with its line
        assert len(sql) == service + 1, "\n".join(sql)
    else:  # the response's read
        assert len(sql) == service + 2, "\n".join(sql)
        assert '"orders_salesorder" sales_order' in sql[-1]
    order = order_with_lines_by_pk(SalesOrder.objects.get(number=response.json()["number"]).pk)
    assert response.content == JSONRenderer().render(OrderSerializer(order).data)
    assert response.json()["lines"][0]["backordered"] == (0 if units_in_stock else 1)


def test_a_superuser_post_costs_the_placement_plus_the_token_read(main, django_user_model):
    stock(ProductFactory(sku="MUG"), main, 10)
    api = token_client(django_user_model.objects.create_superuser("root", "root@example.com", "x"))
    body = {"customer": {"email": "w@example.com", "name": "W"}, "lines": [{"sku": "MUG", "quantity": 1}]}
    api.post(ORDERS, body, format="json")
    service = _service_statements("MUG", "service@example.com")

    with CaptureQueriesContext(connection) as posted:
        response = api.post(ORDERS, {**body, "customer": {"email": "n@example.com", "name": "N"}}, format="json")

    assert response.status_code == 201
    assert len(posted) == service + 1


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_a_placed_order_with_its_line_attached_serializes_as_read_back(main, zone):
    stock(ProductFactory(sku="MUG"), main, 5)
    customer = CustomerFactory(email="vip@example.com", name="Vera", tier=Customer.Tier.VIP)
    order = place(("MUG", 2), customer=customer, ship_by=timezone.localdate() + datetime.timedelta(days=3))

    with CaptureQueriesContext(connection) as followed:
        in_memory = order_with_lines_of(order)
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            data = OrderSerializer(in_memory).data
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        read_back = OrderSerializer(order_with_lines_by_pk(order.pk)).data

    assert in_memory is order
    assert len(followed) == 0
    assert JSONRenderer().render(data) == JSONRenderer().render(read_back)
    [line] = in_memory.lines.all()
    assert _fields(line) == _fields(OrderLine.objects.get(pk=line.pk))
    assert not line._state.adding and line._state.db == "default"
