"""The customer's order status page, reached through the signed link in every email.

GET never changes anything (mail scanners prefetch links): each action is a confirmation page whose form
POSTs (with the CSRF token) to the same URL, then redirects (303) to the status page with a message. A
tampered, expired or unknown token gets a friendly 403 page; a line id that is not on the token's order is
treated the same way, so one order's link can never act on another order.
"""

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.dateformat import format as date_format
from django.views.decorators.http import require_http_methods

from inventory.exceptions import DomainError
from inventory.models import Product
from orders.models import OrderLine, SalesOrder

from .models import ComplianceClock, ComplianceEvent
from .services.substitution import (
    customer_cancel_order,
    customer_cancel_waiting,
    customer_keep_waiting,
    substitute_accept,
    substitute_check,
    substitute_options,
)
from .status_links import BadStatusToken, order_for_token

CHANNEL = ComplianceEvent.Channel.STATUS_PAGE
Clock = ComplianceClock
DATE = "D j M Y"  # Tue 1 Dec 2026


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def _day(value: date | None) -> str:
    return date_format(value, DATE) if value else ""


def _items(units: int) -> str:
    return f"{units} item{pluralize(units)}"


def _client_ip(request: HttpRequest) -> str | None:
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return None


def compliance_words(line: OrderLine, clock: ComplianceClock | None) -> tuple[str, bool]:
    """The line's consumer-law state in the customer's words, and whether we need their answer."""
    if clock is None:
        return "", False
    if clock.state == Clock.State.CANCELLED and clock.refund_due_by:
        return (
            f"Cancelled on {_day(clock.cancelled_on)}. "
            f"Your refund for the cancelled units is due by {_day(clock.refund_due_by)}.",
            False,
        )
    if clock.state != Clock.State.OPEN or not line.backordered:
        return "", False
    if clock.consent == Clock.Consent.EXPRESS:
        if clock.revised_date and not clock.indefinite_consent:
            return f"You agreed to wait until {_day(clock.revised_date)}. You can still cancel before it ships.", False
        return "You agreed to wait until we can ship this item. You can still cancel before it ships.", False
    if not clock.notices_sent:
        return "", False
    if clock.consent_deadline:
        return (
            f"We need your answer by {_day(clock.consent_deadline)} to keep this item. Without it, the waiting "
            "units are cancelled and refunded in full.",
            True,
        )
    if clock.profile == "eu_crd":
        if clock.revised_date:
            return (
                f"We missed the agreed delivery date and now aim to deliver by {_day(clock.revised_date)}. "
                "You may cancel the waiting units for a full refund at any time before they ship.",
                False,
            )
        return "The extra delivery time has run out: you may cancel the waiting units for a full refund.", False
    if clock.revised_date:
        return (
            f"We now expect to ship it by {_day(clock.revised_date)}. If that suits you, there is nothing to do; "
            "you can cancel at any time before it ships.",
            False,
        )
    return "", False


@dataclass
class LineView:
    line: OrderLine
    eta: date | None
    words: str = ""
    needs_answer: bool = False
    substitutes: list[Product] = field(default_factory=list)


def _line_views(order: SalesOrder, *, with_substitutes: bool = False) -> list[LineView]:
    views = []
    for line in order.lines.select_related("product", "backorder", "compliance", "order").order_by("pk"):
        backorder = getattr(line, "backorder", None)
        words, needs_answer = compliance_words(line, getattr(line, "compliance", None))
        views.append(
            LineView(
                line=line,
                eta=backorder.eta if backorder is not None and line.backordered else None,
                words=words,
                needs_answer=needs_answer,
                substitutes=list(substitute_options(line=line)) if with_substitutes and line.backordered else [],
            )
        )
    return views


def _context(order: SalesOrder, token: str, **extra: object) -> dict[str, object]:
    return {
        "shop_name": settings.SHOP_NAME,
        "support_email": settings.SHOP_SUPPORT_EMAIL,
        "order": order,
        "token": token,
        "status_page": reverse("status-page", args=[token]),
        **extra,
    }


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "status/invalid.html",
        {"shop_name": settings.SHOP_NAME, "support_email": settings.SHOP_SUPPORT_EMAIL},
        status=403,
    )


def status_link(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Resolve the signed token to its order (or answer 403), and keep the page private: never cached,
    never indexed, and the token never leaks in a Referer header."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str, **kwargs: object) -> HttpResponse:
        try:
            order = order_for_token(token)
        except BadStatusToken:
            response = _invalid(request)
        else:
            response = view(request, order=order, token=token, **kwargs)
        add_never_cache_headers(response)
        response["X-Robots-Tag"] = "noindex, nofollow"
        # same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with the confirmation
        # forms' POST and Django's CSRF check refuses it (tests/browser). Other sites still never see the token.
        response["Referrer-Policy"] = "same-origin"
        return response

    return wrapper


def _back(token: str) -> HttpResponseSeeOther:
    return HttpResponseSeeOther(reverse("status-page", args=[token]))


@require_http_methods(["GET", "HEAD"])
@status_link
def status_page(request: HttpRequest, *, order: SalesOrder, token: str) -> HttpResponse:
    lines = _line_views(order, with_substitutes=True)
    return render(
        request,
        "status/page.html",
        _context(
            order,
            token,
            lines=lines,
            waiting=sum(v.line.backordered for v in lines),
            allocated=sum(v.line.allocated for v in lines),
            needs_answer=any(v.needs_answer for v in lines),
        ),
    )


@require_http_methods(["GET", "HEAD", "POST"])
@status_link
def keep_waiting(request: HttpRequest, *, order: SalesOrder, token: str) -> HttpResponse:
    waiting = [v for v in _line_views(order) if v.line.backordered]
    if request.method == "POST":
        if not waiting:
            messages.info(request, "Nothing on your order is waiting any more, so there was nothing to confirm.")
            return _back(token)
        customer_keep_waiting(order=order, channel=CHANNEL, ip=_client_ip(request))
        units = sum(v.line.backordered for v in waiting)
        messages.success(
            request,
            f"Thank you: your {_items(units)} on backorder stay on order, and we ship them as soon as they arrive.",
        )
        return _back(token)
    return render(request, "status/keep_waiting.html", _context(order, token, lines=waiting))


@require_http_methods(["GET", "HEAD", "POST"])
@status_link
def cancel_waiting(request: HttpRequest, *, order: SalesOrder, token: str) -> HttpResponse:
    lines = _line_views(order)
    if request.method == "POST":
        try:
            result = customer_cancel_waiting(order=order, channel=CHANNEL, ip=_client_ip(request))
        except DomainError as exc:
            messages.error(request, exc.detail)
            return _back(token)
        if result.total:
            messages.success(
                request,
                f"{result.total} backordered item{pluralize(result.total)} cancelled. "
                f"Your refund of these items is due by {_day(result.refund_due_by)}.",
            )
        else:
            messages.info(request, "Nothing on your order was waiting any more, so nothing was cancelled.")
        return _back(token)
    return render(
        request,
        "status/cancel.html",
        _context(
            order,
            token,
            lines=[v for v in lines if v.line.backordered],
            waiting=sum(v.line.backordered for v in lines),
            allocated=sum(v.line.allocated for v in lines),
        ),
    )


@require_http_methods(["GET", "HEAD", "POST"])
@status_link
def cancel_order(request: HttpRequest, *, order: SalesOrder, token: str) -> HttpResponse:
    lines = _line_views(order)
    if request.method == "POST":
        try:
            result = customer_cancel_order(order=order, channel=CHANNEL, ip=_client_ip(request))
        except DomainError as exc:
            messages.error(request, exc.detail)
            return _back(token)
        if result.total:
            messages.success(
                request,
                f"{_items(result.total)} cancelled. Your refund of these items is due by {_day(result.refund_due_by)}.",
            )
        else:
            messages.info(request, "Nothing on your order was left to cancel.")
        return _back(token)
    return render(
        request,
        "status/cancel_order.html",
        _context(
            order,
            token,
            lines=[v for v in lines if v.line.outstanding],
            outstanding=sum(v.line.outstanding for v in lines),
            shipped=sum(v.line.shipped for v in lines),
        ),
    )


@require_http_methods(["GET", "HEAD", "POST"])
@status_link
def take_substitute(request: HttpRequest, *, order: SalesOrder, token: str, line_id: int, sku: str) -> HttpResponse:
    line = order.lines.select_related("product", "order").filter(pk=line_id).first()
    if line is None:  # a line of another order: treat like a tampered link
        return _invalid(request)
    substitute = Product.objects.filter(sku=sku).first()
    error = "" if substitute else f"We do not offer {sku} as a substitute for {line.product.name}."
    if request.method == "POST" and substitute is not None:
        try:
            new_line = substitute_accept(line=line, substitute=substitute, ip=_client_ip(request), channel=CHANNEL)
        except DomainError as exc:
            messages.error(request, exc.detail)
            return _back(token)
        messages.success(
            request,
            f"Done: you get {new_line.quantity} × {substitute.name} instead of the waiting {line.product.name}. "
            "It is reserved for you and ships soon; the waiting units were cancelled.",
        )
        return _back(token)
    if request.method == "POST":
        messages.error(request, error)
        return _back(token)
    if substitute is not None:
        try:
            substitute_check(line=line, substitute=substitute)
        except DomainError as exc:
            error = exc.detail
    return render(
        request,
        "status/substitute.html",
        _context(order, token, line=line, substitute=substitute, error=error),
        status=404 if substitute is None else 409 if error else 200,
    )
