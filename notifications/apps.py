from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Registers the webhooks.deliver and webhooks.dispatch tasks (autodiscovery only finds tasks.py).
        from . import webhooks  # noqa: F401
