"""A fill works through the queue head a chunk of lines at a time (memory flat however large the receipt) with
exactly the result of one pass: FIFO order, the last line partly filled, nothing filled twice."""

import pytest

from backorders.models import Backorder
from backorders.services import allocation, stock_adjust_and_fill
from orders.models import Allocation

from ..inventory.factories import ProductFactory, WarehouseFactory
from .factories import waiting_queue


def _fill(monkeypatch, chunk: int, units: int) -> list[tuple[str, int, str]]:
    monkeypatch.setattr(allocation, "FILL_CHUNK_LINES", chunk)
    product = ProductFactory(lead_time_days=10)
    orders = waiting_queue(product, 5, quantity=2)  # 10 units waiting, FIFO by placed time
    _, fill = stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=units, reason="Delivery")
    assert fill.units == min(units, 10)
    assert fill.lines_filled + fill.lines_partly_filled == -(-min(units, 10) // 2)  # each line counted once
    rows = []
    for order in orders:
        backorder = Backorder.objects.get(line__order=order)
        allocated = sum(Allocation.objects.filter(line__order=order).values_list("quantity", flat=True))
        rows.append((order.number.rsplit("-", 1)[1], allocated, backorder.status))
    return rows


@pytest.mark.django_db
@pytest.mark.parametrize("units", [1, 5, 7, 10, 12])
def test_chunked_fill_equals_one_pass(monkeypatch, units, assert_invariants):
    one_pass = _fill(monkeypatch, 10_000, units)
    chunked = _fill(monkeypatch, 2, units)
    assert [(allocated, status) for _, allocated, status in chunked] == [
        (allocated, status) for _, allocated, status in one_pass
    ]
    filled_units = [allocated for _, allocated, _ in chunked]
    assert filled_units == sorted(filled_units, reverse=True)  # FIFO: earlier orders first
    assert sum(filled_units) == min(units, 10)
    assert_invariants()
