from django.apps import AppConfig


class BackordersConfig(AppConfig):
    name = "backorders"
    verbose_name = "Backorders"

    def ready(self) -> None:
        from notifications.models import Notification
        from notifications.services import register_context_builder

        from . import roles
        from .services.notices import filled_contexts

        roles.connect()
        register_context_builder(Notification.Kind.BACKORDER_FILLED, filled_contexts)
