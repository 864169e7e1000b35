"""Signed, expiring links to a customer's order status page. A token is bound to one order."""

from django.conf import settings
from django.core import signing

from orders.models import SalesOrder

from .models import BackorderPolicy

SALT = "backorders.status-page"


class BadStatusToken(Exception):
    """Tampered, expired, or for an order that no longer exists."""


def status_token(order: SalesOrder) -> str:
    return signing.dumps({"order": order.pk, "number": order.number}, salt=SALT, compress=True)


def status_url(order: SalesOrder) -> str:
    """Absolute link to /status/<token>/ (the URL named "status-page")."""
    return f"{settings.SHOP_BASE_URL.rstrip('/')}/status/{status_token(order)}/"


def order_for_token(token: str, *, max_age_days: int | None = None) -> SalesOrder:
    """The order a token was issued for; BadStatusToken if forged, expired, or the order is gone."""
    if max_age_days is None:
        max_age_days = BackorderPolicy.current().status_link_days
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age_days * 86400)
    except signing.SignatureExpired as exc:
        raise BadStatusToken("expired") from exc
    except signing.BadSignature as exc:
        raise BadStatusToken("invalid") from exc
    order = (
        SalesOrder.objects.select_related("customer").filter(pk=data.get("order"), number=data.get("number")).first()
    )
    if order is None:
        raise BadStatusToken("invalid")
    return order
