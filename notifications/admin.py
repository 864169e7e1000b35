"""The outbox in the admin: what was sent to whom and when, what failed and why, and the two actions
customer service needs (resend a failed email, send a pending one now). Rows are written by services
only, so every field is read-only."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html

from inventory.admin import ActionsOnlyAdminMixin, ValueListFilter, admin_link, badge, count_noun, redirect_to_next

from .models import Notification
from .services import DeliveryFailed, notification_resend, notification_send

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
        "subject",
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
