"""Shipping an order, with its order.shipped webhook event.

orders.services.order_ship moves the stock; the orders app sits below notifications and cannot emit events,
so admin actions, API views and commands ship through `order_ship_and_notify`.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from orders.models import SalesOrder, Shipment
from orders.services import order_ship

from .events import order_shipped_emit


@transaction.atomic
def order_ship_and_notify(*, order: SalesOrder, acting_user: AbstractBaseUser | None = None) -> Shipment:
    """order_ship (every allocated unit to the carrier; same errors: ShipCompleteHeld, NothingToShip), plus an
    order.shipped event written in the same transaction: nothing is announced if the shipment rolls back."""
    shipment = order_ship(order=order, acting_user=acting_user)
    order_shipped_emit(shipment=shipment)
    return shipment
