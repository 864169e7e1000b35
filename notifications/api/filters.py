from django_filters import rest_framework as filters

from notifications.models import Notification


class NotificationFilter(filters.FilterSet):
    order = filters.CharFilter(field_name="order__number", help_text="Order number.")
    kind = filters.ChoiceFilter(choices=Notification.Kind.choices)
    status = filters.ChoiceFilter(choices=Notification.Status.choices)

    class Meta:
        model = Notification
        fields = ["order", "kind", "status"]
