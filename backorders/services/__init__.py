"""Workflows that span apps: placing and cancelling orders, filling the backorder queue, stock changes
that refill it. Admin actions, API views, commands and tasks all call these."""

from .allocation import backorders_fill, order_allocate_waiting
from .cancellation import order_cancel
from .placement import CustomerRequest, LineRequest, order_place
from .stock import stock_adjust_and_fill

__all__ = [
    "CustomerRequest",
    "LineRequest",
    "backorders_fill",
    "order_allocate_waiting",
    "order_cancel",
    "order_place",
    "stock_adjust_and_fill",
]
