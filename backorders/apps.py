from django.apps import AppConfig


class BackordersConfig(AppConfig):
    name = "backorders"
    verbose_name = "Backorders"

    def ready(self) -> None:
        from notifications.models import Notification
        from notifications.services import register_context_builder

        from . import roles
        from .services.compliance import cancellation_offer_contexts, status_update_contexts
        from .services.notices import created_contexts, filled_contexts

        roles.connect()
        register_context_builder(Notification.Kind.BACKORDER_CREATED, created_contexts)
        register_context_builder(Notification.Kind.BACKORDER_FILLED, filled_contexts)
        register_context_builder(Notification.Kind.STATUS_UPDATE, status_update_contexts)
        register_context_builder(Notification.Kind.CANCELLATION_OFFER, cancellation_offer_contexts)
