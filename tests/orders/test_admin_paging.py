"""The orders changelist on a big table: the count is exact up to a limit and says "about" or "more than" above
it, deep pages find their ids first, search goes through the indexes, and the unit columns come from per-row
subqueries; a page costs the same queries however many rows there are."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import orders.admin as orders_admin
from orders.admin_paging import CappedCountPaginator
from orders.models import SalesOrder

from ..backorders.factories import place
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:orders_salesorder_changelist"


@pytest.fixture
def mug():
    product = ProductFactory(sku="MUG")
    stock(product, WarehouseFactory(code="MAIN", priority=1), 1000)
    return product


@pytest.fixture
def small_pages(monkeypatch):
    """Pages of 2 orders, exact counts up to 3 orders, ids first from the third page on."""
    monkeypatch.setattr(admin.site._registry[SalesOrder], "list_per_page", 2)
    monkeypatch.setattr(CappedCountPaginator, "exact_limit", 3)
    monkeypatch.setattr(CappedCountPaginator, "deep_offset", 4)


def changelist(client, query: str = ""):
    response = client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200, query
    return response


def shown(response) -> list[str]:
    return [order.number for order in response.context["cl"].result_list]


def test_count_is_exact_up_to_the_limit(admin_client, mug, small_pages):
    for _ in range(3):
        place(("MUG", 1))

    response = changelist(admin_client)

    assert response.context["cl"].result_count == 3
    assert response.context["cl"].paginator.approximate is False
    assert "3 sales orders" in response.content.decode()


@pytest.mark.postgres
def test_above_the_limit_the_whole_table_is_estimated_and_says_about(admin_client, mug, small_pages):
    for _ in range(5):
        place(("MUG", 1))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE orders_salesorder")

    response = changelist(admin_client)

    paginator = response.context["cl"].paginator
    assert paginator.approximate is True and paginator.lower_bound is False
    assert response.context["cl"].result_count == 5  # the statistics of the analysed table
    assert "about 5</span> sales orders" in response.content.decode()


def test_above_the_limit_through_a_join_says_more_than(admin_client, mug, small_pages):
    for _ in range(5):
        place(("MUG", 1))

    response = changelist(admin_client, "?customer__tier__exact=standard")

    paginator = response.context["cl"].paginator
    assert paginator.approximate is True and paginator.lower_bound is True
    assert "more than 3</span> sales orders" in response.content.decode()


def test_every_page_shows_the_orders_in_list_order_and_pages_past_the_count_open(admin_client, mug, small_pages):
    # Given 7 orders, newest first in the list, on pages of 2 (the third page on fetched by id)
    placed = [place(("MUG", 1)).number for _ in range(7)]
    expected = list(reversed(placed))

    # When / then: the same rows as plain slicing, page by page, through a join's "more than" count too
    for query in ("", "&customer__tier__exact=standard"):
        for page in (1, 2, 3, 4):
            assert shown(changelist(admin_client, f"?p={page}{query}")) == expected[(page - 1) * 2 : page * 2]
        assert shown(changelist(admin_client, f"?p=9{query}")) == []  # past the real end: empty, not an error


@pytest.mark.parametrize("query", ["", "?p=3", "?customer__tier__exact=standard", "?q=so-", "?q=smith"])
def test_queries_of_a_page_do_not_grow_with_the_orders(admin_client, mug, small_pages, query):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            changelist(admin_client, query)
        return len(captured)

    for _ in range(6):
        place(("MUG", 1), customer=CustomerFactory(name="Jo Smith"))
    few = queries()
    for _ in range(6):
        place(("MUG", 1), customer=CustomerFactory(name="Al Smith"))

    assert queries() == few


def test_unit_columns_sum_the_lines(admin_client, mug):
    ProductFactory(sku="LAMP")
    order = place(("MUG", 2), ("LAMP", 3))

    [row] = changelist(admin_client).context["cl"].result_list

    assert row.pk == order.pk
    assert (row.units_ordered, row.units_allocated, row.units_backordered) == (5, 2, 3)
    assert (row.units_shipped, row.units_cancelled) == (0, 0)


@pytest.mark.parametrize("path", ["few ids", "condition"])
def test_search_by_number_email_or_name(admin_client, mug, monkeypatch, path):
    # Given orders of three customers
    if path == "condition":
        monkeypatch.setattr(orders_admin, "SEARCH_ID_LIMIT", 0)
    ada = place(("MUG", 1), customer=CustomerFactory(email="ada@example.com", name="Ada Lovelace"))
    SalesOrder.objects.filter(pk=ada.pk).update(number="WEB-77-ABC")
    grace = place(("MUG", 1), customer=CustomerFactory(email="grace@example.com", name="Grace Hopper"))
    place(("MUG", 1), customer=CustomerFactory(email="alan@example.com", name="Alan Turing"))

    # When / then
    assert shown(changelist(admin_client, "?q=web-77")) == ["WEB-77-ABC"]  # how the number starts, any case
    assert shown(changelist(admin_client, "?q=GRACE@EX")) == [grace.number]  # how the email starts, any case
    assert shown(changelist(admin_client, "?q=lovelace")) == ["WEB-77-ABC"]  # part of the name
    assert shown(changelist(admin_client, "?q=ample.com")) == []  # an email is matched from its start
    assert shown(changelist(admin_client, "?q=nobody")) == []
