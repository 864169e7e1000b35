"""The outbox in the admin: what was sent to whom and when, what failed and why, and the two actions
customer service needs (resend a failed email, send a pending one now). Rows are written by services
only, so every field is read-only.

Webhooks: endpoints are edited here (URL, secret, event types as checkboxes, "Send a test event"); the
delivery log is read-only with a "Redeliver" action for failed deliveries.
"""

import json
import secrets
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils.html import format_html

from inventory.admin import ActionsOnlyAdminMixin, ValueListFilter, admin_link, badge, count_noun, redirect_to_next

from .models import Notification, WebhookDelivery, WebhookEndpoint
from .services import DeliveryFailed, notification_resend, notification_send, notifications_render
from .webhooks import TEST_EVENT, webhook_redeliver, webhook_send_test, webhooks_wait_for_dispatch

# How many errors a message lists.
MESSAGE_LIST_LIMIT = 5

STATUS_COLORS = {
    Notification.Status.PENDING: "#c05600",
    Notification.Status.SENT: "#2e7d32",
    Notification.Status.FAILED: "#b3261e",
    Notification.Status.SUPPRESSED: "#777777",
}


class OrderNumberFilter(ValueListFilter):
    """`?order=A-1001`: every email about one order (for links from the order's page)."""

    title = "order"
    parameter_name = "order"
    lookup = "order__number"


@admin.register(Notification)
class NotificationAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "kind",
        "status_badge",
        "to_email",
        "subject_line",
        "order_number",
        "scheduled_for",
        "sent_at",
        "attempts",
        "last_error_short",
    ]
    list_filter = ["status", "kind", OrderNumberFilter]
    search_fields = ["to_email", "subject", "order__number"]
    list_select_related = ["order"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["resend", "send_now"]
    fieldsets = [
        (None, {"fields": ["kind", "status_badge", "to_email", "customer_link", "order_link", "line", "dedupe_key"]}),
        ("Delivery", {"fields": ["created_at", "scheduled_for", "sent_at", "attempts", "last_error"]}),
        ("Content", {"fields": ["subject", "html_preview", "body_text_preview"]}),
    ]
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    # Columns and read-only fields

    @admin.display(description="status", ordering="status")
    def status_badge(self, notification: Notification) -> str:
        return badge(notification.get_status_display(), STATUS_COLORS.get(notification.status, "#777777"))

    @admin.display(description="subject", ordering="subject")
    def subject_line(self, notification: Notification) -> str:
        return notification.subject if notification.rendered else "(rendered when sent; open it to preview)"

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None):
        """A bulk email not yet rendered is rendered when opened (the same content the worker would send)."""
        notification = super().get_object(request, object_id, from_field)
        if notification is not None and not notification.rendered:
            notifications_render(ids=[notification.pk])
            notification.refresh_from_db()
        return notification

    @admin.display(description="order", ordering="order__number")
    def order_number(self, notification: Notification) -> str:
        return notification.order.number if notification.order_id else "-"

    @admin.display(description="last error")
    def last_error_short(self, notification: Notification) -> str:
        return truncatechars(notification.last_error, 60) if notification.last_error else ""

    @admin.display(description="customer")
    def customer_link(self, notification: Notification) -> str:
        return admin_link(notification.customer)

    @admin.display(description="order")
    def order_link(self, notification: Notification) -> str:
        return admin_link(notification.order)

    @admin.display(description="HTML part (as the customer sees it)")
    def html_preview(self, notification: Notification) -> str:
        # srcdoc is an attribute, so format_html escapes the whole document; the empty sandbox runs no script,
        # submits no form and follows no link out of the admin.
        return format_html(
            '<iframe sandbox="" srcdoc="{}" title="Email preview" '
            'style="width:100%;max-width:720px;height:640px;border:1px solid #ccc;background:#fff"></iframe>',
            notification.body_html,
        )

    @admin.display(description="text part")
    def body_text_preview(self, notification: Notification) -> str:
        return format_html('<pre style="white-space:pre-wrap;max-width:720px">{}</pre>', notification.body_text)

    # Actions

    @admin.action(description="Resend", permissions=["change"])
    def resend(self, request: HttpRequest, queryset: QuerySet[Notification]):
        """Put failed emails back in the queue (attempts reset); any other status is reported as skipped."""
        resent = skipped = 0
        for notification in queryset.order_by("pk"):
            if notification_resend(notification=notification):
                resent += 1
            else:
                skipped += 1
        if resent:
            self.message_user(
                request, f"{count_noun(resent, 'failed email')} queued for sending again.", messages.SUCCESS
            )
        if skipped:
            self.message_user(
                request,
                f"{count_noun(skipped, 'email')} skipped: only failed emails are resent.",
                messages.WARNING,
            )
        return redirect_to_next(request)

    @admin.action(description="Send now", permissions=["change"])
    def send_now(self, request: HttpRequest, queryset: QuerySet[Notification]):
        """Send pending emails at once, even before their scheduled time; any other status is skipped."""
        sent = skipped = 0
        retrying: list[str] = []
        failed: list[str] = []
        for notification in queryset.order_by("pk"):
            if notification.status != Notification.Status.PENDING:
                skipped += 1
                continue
            try:
                result = notification_send(notification_id=notification.pk, ignore_schedule=True)
            except DeliveryFailed as exc:
                retrying.append(f"#{notification.pk}: {exc}")
                continue
            if result == Notification.Status.SENT:
                sent += 1
            elif result == Notification.Status.FAILED:
                failed.append(f"#{notification.pk}")
            else:
                skipped += 1  # a worker sent it meanwhile
        if sent:
            self.message_user(request, f"{count_noun(sent, 'email')} sent.", messages.SUCCESS)
        if retrying:
            self.message_user(
                request,
                f"{count_noun(len(retrying), 'email')} could not be sent and will be retried: "
                f"{'; '.join(retrying[:MESSAGE_LIST_LIMIT])}",
                messages.ERROR,
            )
        if failed:
            self.message_user(
                request,
                f"{count_noun(len(failed), 'email')} failed on the last allowed attempt ({', '.join(failed)}); "
                "see the error, then use Resend.",
                messages.ERROR,
            )
        if skipped:
            self.message_user(
                request, f"{count_noun(skipped, 'email')} skipped: only pending emails are sent.", messages.WARNING
            )
        return redirect_to_next(request)


# --- webhooks -------------------------------------------------------------------------------------------

DELIVERY_COLORS = {
    WebhookDelivery.Status.PENDING: "#c05600",
    WebhookDelivery.Status.DELIVERED: "#2e7d32",
    WebhookDelivery.Status.FAILED: "#b3261e",
}


DISPATCH_HINT = (
    "No message broker is configured (embedded mode), so no worker sends webhooks: "
    "run `manage.py dispatch_webhooks` to deliver what is pending."
)


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def deliveries_url(**params: object) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return reverse("admin:notifications_webhookdelivery_changelist") + (f"?{query}" if query else "")


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="Where events are POSTed (http or https). Redirects are not followed.",
    )
    event_types = forms.MultipleChoiceField(
        choices=WebhookEndpoint.Event.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Tick none to receive every event, including ones added later.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "active", "event_types", "secret"]
        widgets = {"secret": forms.TextInput(attrs={"size": 60, "autocomplete": "off", "spellcheck": "false"})}
        help_texts = {
            "secret": "Shared with the receiver, who checks X-Webhook-Signature with it (docs/WEBHOOKS.md). "
            "Change it to rotate; deliveries already waiting are signed with the new one.",
        }

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if urlsplit(url).scheme not in ("http", "https"):
            raise forms.ValidationError("Use an http:// or https:// URL.")
        return url

    def clean_event_types(self) -> list[str]:
        chosen = set(self.cleaned_data["event_types"])
        return [value for value, _label in WebhookEndpoint.Event.choices if value in chosen]  # a stable order


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "description", "active", "events", "pending_count", "failed_count", "created_at"]
    list_filter = ["active"]
    search_fields = ["url", "description"]
    actions = ["send_test_event"]
    fields = ["url", "description", "active", "event_types", "secret", "created_at", "deliveries"]
    readonly_fields = ["created_at", "deliveries"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEndpoint]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                pending=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)),
                failed=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
            )
        )

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        return {"secret": new_webhook_secret(), **super().get_changeform_initial_data(request)}

    @admin.display(description="events")
    def events(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.event_types) if endpoint.event_types else "all events"

    @admin.display(description="pending", ordering="pending")
    def pending_count(self, endpoint: WebhookEndpoint) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            deliveries_url(endpoint__id__exact=endpoint.pk, status__exact="pending"),
            endpoint.pending,
        )

    @admin.display(description="failed", ordering="failed")
    def failed_count(self, endpoint: WebhookEndpoint) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            deliveries_url(endpoint__id__exact=endpoint.pk, status__exact="failed"),
            endpoint.failed,
        )

    @admin.display(description="delivery log")
    def deliveries(self, endpoint: WebhookEndpoint) -> str:
        if endpoint.pk is None:
            return "-"
        return format_html(
            '<a href="{}">Every delivery to this endpoint</a>', deliveries_url(endpoint__id__exact=endpoint.pk)
        )

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]):
        """A `webhook.test` event to each selected endpoint (active or not), delivered by the workers."""
        endpoints = list(queryset.order_by("pk"))
        for endpoint in endpoints:
            webhook_send_test(endpoint=endpoint)
        log = deliveries_url(
            event_type=TEST_EVENT, **({"endpoint__id__exact": endpoints[0].pk} if len(endpoints) == 1 else {})
        )
        self.message_user(
            request,
            format_html(
                '{} queued for delivery: see the <a href="{}">delivery log</a> for the result.',
                count_noun(len(endpoints), "test event"),
                log,
            ),
            messages.SUCCESS,
        )
        if webhooks_wait_for_dispatch():
            self.message_user(request, DISPATCH_HINT, messages.WARNING)
        return redirect_to_next(request)


class EventIdFilter(ValueListFilter):
    """`?event=<uuid>`: one event's deliveries to every endpoint (what a receiver quotes as X-Webhook-Id)."""

    title = "event id"
    parameter_name = "event"
    lookup = "event_id"


class EventTypeFilter(admin.SimpleListFilter):
    title = "event"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [*WebhookEndpoint.Event.choices, (TEST_EVENT, TEST_EVENT)]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "event_type",
        "status_badge",
        "endpoint",
        "attempts",
        "last_status_code",
        "last_error_short",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", EventTypeFilter, "endpoint", EventIdFilter]
    search_fields = ["endpoint__url", "endpoint__description"]
    list_select_related = ["endpoint"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["redeliver"]
    fieldsets = [
        (None, {"fields": ["event_type", "event_id", "status_badge", "endpoint_link"]}),
        (
            "Delivery",
            {
                "fields": [
                    "created_at",
                    "attempts",
                    "last_status_code",
                    "last_error",
                    "next_attempt_at",
                    "delivered_at",
                ]
            },
        ),
        ("Payload (the body is this, compact with sorted keys)", {"fields": ["payload_pretty"]}),
    ]
    readonly_fields = [field for _name, options in fieldsets for field in options["fields"]]

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery: WebhookDelivery) -> str:
        return badge(delivery.get_status_display(), DELIVERY_COLORS.get(delivery.status, "#777777"))

    @admin.display(description="last error")
    def last_error_short(self, delivery: WebhookDelivery) -> str:
        return truncatechars(delivery.last_error, 60) if delivery.last_error else ""

    @admin.display(description="endpoint")
    def endpoint_link(self, delivery: WebhookDelivery) -> str:
        return admin_link(delivery.endpoint)

    @admin.display(description="payload")
    def payload_pretty(self, delivery: WebhookDelivery) -> str:
        text = json.dumps(delivery.payload, indent=2, sort_keys=True)
        return format_html('<pre style="white-space:pre-wrap;max-width:720px">{}</pre>', text)

    @admin.action(description="Redeliver", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]):
        """Send failed deliveries again (attempts start over); delivered and pending ones are skipped."""
        queued = skipped = 0
        for delivery in queryset.order_by("pk"):
            if webhook_redeliver(delivery=delivery):
                queued += 1
            else:
                skipped += 1
        if queued:
            self.message_user(
                request, f"{count_noun(queued, 'failed delivery', 'failed deliveries')} queued again.", messages.SUCCESS
            )
            if webhooks_wait_for_dispatch():
                self.message_user(request, DISPATCH_HINT, messages.WARNING)
        if skipped:
            self.message_user(
                request,
                f"{count_noun(skipped, 'delivery', 'deliveries')} skipped: only failed deliveries are redelivered "
                "(a delivered event is never sent twice; a pending one is already being retried).",
                messages.WARNING,
            )
        return redirect_to_next(request)
