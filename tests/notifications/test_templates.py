"""Every kind renders a subject, a text and an HTML part with the line items, the dates and the status link;
the delay notices use the opt-in or opt-out wording COMPLIANCE.md requires."""

from datetime import date
from html.parser import HTMLParser

import pytest
from django.conf import settings

from notifications.models import Notification
from notifications.services import render

from ..inventory.factories import ProductFactory
from .factories import STATUS_URL, OrderLineFactory, SalesOrderFactory, context_for

pytestmark = pytest.mark.django_db

ACTION_NEEDED = "Action needed: reply to keep your order"


@pytest.fixture
def line():
    order = SalesOrderFactory(number="A-1001", customer__name="Ann Smith")
    return OrderLineFactory(order=order, product=ProductFactory(sku="MUG", name="Stoneware mug"), quantity=3)


def render_kind(kind: str, line, **overrides) -> tuple[str, str, str]:
    context = {"customer": line.order.customer, "order": line.order, "line": line, **context_for(kind, line)}
    return render(kind, {**context, **overrides})


class _TagBalance(HTMLParser):
    """Counts open minus closed tags (void elements excluded): 0 for a balanced document."""

    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.depth -= 1


@pytest.mark.parametrize("kind", Notification.Kind.values)
def test_every_kind_renders_subject_text_and_html_with_items_dates_and_status_link(kind, line):
    subject, text, html = render_kind(kind, line)

    assert subject and "\n" not in subject
    assert "A-1001" in subject
    for part in (text, html):
        assert "Ann Smith" in part
        assert STATUS_URL in part
        assert "Stoneware mug" in part
        assert "MUG" in part
        assert "Tue 8 Dec 2026" in part  # the line's expected date
        assert settings.SHOP_NAME in part
        assert settings.SHOP_SUPPORT_EMAIL in part
        assert "{{" not in part and "{%" not in part
    assert "- Stoneware mug (MUG): 3 ordered, 3 waiting, expected Tue 8 Dec 2026" in text
    assert f'href="{STATUS_URL}"' in html
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "\n\n\n" not in text and text.endswith("\n") and not text.startswith("\n")
    balance = _TagBalance()
    balance.feed(html)
    assert balance.depth == 0


@pytest.mark.parametrize("kind", Notification.Kind.values)
def test_text_parts_are_not_html_escaped_and_html_parts_are(kind, line):
    order = SalesOrderFactory(number="R&D-7", customer__name="Ann O'Brien & Sons")
    line = OrderLineFactory(order=order, product=ProductFactory(sku="CUP", name="Cup <large>"))

    subject, text, html = render_kind(kind, line)

    assert "R&D-7" in subject
    assert "Ann O'Brien & Sons" in text
    assert "Cup <large>" in text
    assert "&amp;" not in text + subject and "&#x27;" not in text + subject
    assert "Ann O&#x27;Brien &amp; Sons" in html
    assert "Cup &lt;large&gt;" in html
    assert "<large>" not in html


def test_a_line_without_eta_reads_not_known_yet_and_one_not_waiting_reads_none_waiting(line):
    lines = [
        {"sku": "MUG", "name": "Stoneware mug", "quantity": 3, "backordered": 3, "eta": None},
        {"sku": "TEA", "name": "Tea", "quantity": 1, "backordered": 0, "eta": None},
    ]

    _subject, text, html = render_kind(Notification.Kind.BACKORDER_CREATED, line, lines=lines)

    assert "- Stoneware mug (MUG): 3 ordered, 3 waiting, expected (date not known yet)" in text
    assert "- Tea (TEA): 1 ordered, none waiting" in text
    assert "not known yet" in html


def test_backorder_created_says_what_happens_next_and_how_ship_complete_orders_ship(line):
    _subject, text, _html = render_kind(Notification.Kind.BACKORDER_CREATED, line)
    line.order.ship_complete = True
    _subject, complete_text, _html = render_kind(Notification.Kind.BACKORDER_CREATED, line)

    assert "What is in stock ships now; the waiting items follow as they arrive." in text
    assert "we send the whole order once every item is in" in complete_text
    assert "cancel the waiting items on your order status page and we refund them in full" in text


def test_eta_changed_shows_the_previous_and_the_new_date(line):
    subject, text, html = render_kind(
        Notification.Kind.ETA_CHANGED, line, previous_eta=date(2026, 12, 1), new_eta=date(2026, 12, 15)
    )

    assert subject == "New expected date for your order A-1001: Tue 15 Dec 2026"
    assert "Previous date: Tue 1 Dec 2026" in text
    assert "New date:      Tue 15 Dec 2026" in text
    assert "Tue 1 Dec 2026" in html and "Tue 15 Dec 2026" in html


def test_eta_changed_to_unknown(line):
    subject, text, _html = render_kind(Notification.Kind.ETA_CHANGED, line, new_eta=None)

    assert subject == "Your order A-1001: the expected date is not known any more"
    assert "New date:      not known yet" in text


# --- delay option notices (COMPLIANCE.md) -----------------------------------------------------------


def test_first_notice_where_silence_is_consent_reads_as_an_update(line):
    subject, text, html = render_kind(
        Notification.Kind.DELAY_NOTICE,
        line,
        ship_by=date(2026, 12, 1),
        revised_date=date(2026, 12, 31),
        needs_consent=False,
    )

    assert subject == "Update on your order A-1001: new ship date Thu 31 Dec 2026"
    assert not subject.startswith("Action needed")
    for part in (text, html):
        assert "we cannot ship the waiting items by Tue 1 Dec 2026 as promised" in part
        assert "if we do not hear from you, that means you agree to wait until Thu 31 Dec 2026" in part
        assert "cancel the waiting items for a full refund at any time before they ship" in part
        assert "express consent" not in part


@pytest.mark.parametrize("revised_date", [date(2027, 1, 1), None], ids=["R beyond T+30", "no R"])
def test_first_notice_that_needs_consent_says_so_in_the_subject_and_body(line, revised_date):
    subject, text, html = render_kind(
        Notification.Kind.DELAY_NOTICE,
        line,
        ship_by=date(2026, 12, 1),
        revised_date=revised_date,
        needs_consent=True,
        consent_deadline=date(2026, 12, 31),
        reason="the supplier has stopped production",
    )

    assert subject.startswith(ACTION_NEEDED)
    assert subject == "Action needed: reply to keep your order A-1001 by Thu 31 Dec 2026"
    for part in (text, html):
        assert "Without your express consent by Thu 31 Dec 2026, the waiting items are cancelled and refunded" in part
        assert "Keep waiting" in part
        assert "that means you agree" not in part
    if revised_date:
        assert "We now expect to ship them by Fri 1 Jan 2027." in text
    else:
        assert "We do not know yet when we can ship them: the supplier has stopped production." in text


def test_renewed_notice_needs_consent_and_names_the_missed_revised_date(line):
    subject, text, _html = render_kind(Notification.Kind.RENEWED_DELAY_NOTICE, line)

    assert subject == "Action needed: reply to keep your order A-1001 by Sun 20 Dec 2026"
    assert "by Sun 20 Dec 2026, the date we gave you in our last notice" in text
    assert "We now expect to ship them by Fri 15 Jan 2027." in text
    assert (
        "Without your express consent by Sun 20 Dec 2026, the waiting items are cancelled and refunded in full." in text
    )


def test_eu_notice_proposes_an_additional_period_and_states_the_right_to_terminate(line):
    subject, text, html = render_kind(
        Notification.Kind.DELAY_NOTICE,
        line,
        profile="eu_crd",
        ship_by=date(2026, 12, 1),
        revised_date=date(2026, 12, 10),
        needs_consent=False,
        additional_period_end=date(2026, 12, 15),
        essential=False,
    )

    assert subject == "Your order A-1001 is delayed: we propose delivery by Tue 15 Dec 2026"
    for part in (text, html):
        assert "We propose an additional period for delivery, until" in part and "Tue 15 Dec 2026" in part
        assert "If we have not delivered by then, you may terminate the contract" in part
        assert "refund you without undue delay" in part
        assert "that means you agree" not in part  # no silence-as-consent under the directive
        assert "at once" not in part


def test_eu_notice_when_the_date_was_essential_offers_termination_at_once(line):
    _subject, text, html = render_kind(
        Notification.Kind.DELAY_NOTICE,
        line,
        profile="eu_crd",
        ship_by=date(2026, 12, 1),
        revised_date=None,
        needs_consent=False,
        additional_period_end=date(2026, 12, 15),
        essential=True,
    )

    for part in (text, html):
        assert "Because the delivery date was essential, you may terminate the contract at once" in part
        assert "We do not know yet when we can deliver them." in part


# --- the other kinds --------------------------------------------------------------------------------


def test_cancellation_offer_offers_one_click_cancel_substitutes_and_the_coupon(line):
    _subject, text, html = render_kind(Notification.Kind.CANCELLATION_OFFER, line)
    _subject, no_coupon_text, _html = render_kind(
        Notification.Kind.CANCELLATION_OFFER, line, coupon_code="", substitutes=[]
    )

    assert "You have been waiting 14 days" in text
    assert "cancel the waiting items with one click on your order status page" in text
    assert "- Blue mug (MUG-BLUE)" in text and "<li>Blue mug (MUG-BLUE)</li>" in html
    assert "goodwill code: SORRY-10" in text and "SORRY-10" in html
    assert "goodwill code" not in no_coupon_text
    assert "In stock now" not in no_coupon_text


def test_status_update_and_backorder_filled(line):
    update_subject, update_text, _html = render_kind(Notification.Kind.STATUS_UPDATE, line, days_waiting=1)
    filled_subject, filled_text, _html = render_kind(Notification.Kind.BACKORDER_FILLED, line)

    assert update_subject == "Your order A-1001: still waiting for some items (1 day)"
    assert "have now been waiting 1 day." in update_text
    assert filled_subject == "Good news: the items you were waiting for in order A-1001 are in"
    assert "Stoneware mug (MUG) from your order A-1001 has arrived and is reserved for you." in filled_text


def test_cancellation_confirmed_lists_what_was_cancelled_and_the_refund_due_date(line):
    subject, text, html = render_kind(
        Notification.Kind.CANCELLATION_CONFIRMED, line, reason="We did not hear from you by Sun 20 Dec 2026."
    )

    assert subject == "Cancellation confirmed: your order A-1001"
    assert "- Stoneware mug (MUG): 3 cancelled" in text
    assert "Your refund for them is due by Thu 10 Dec 2026 at the latest" in text
    assert "Why: We did not hear from you by Sun 20 Dec 2026." in text
    assert "Thu 10 Dec 2026" in html


def test_no_marketing_content(line):
    for kind in Notification.Kind.values:
        _subject, text, html = render_kind(kind, line)
        for part in (text.lower(), html.lower()):
            assert "unsubscribe" not in part
            assert "newsletter" not in part
            assert "<img" not in part
            assert "it contains no advertising" in part
