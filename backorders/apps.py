from django.apps import AppConfig


class BackordersConfig(AppConfig):
    name = "backorders"
    verbose_name = "Backorders"

    def ready(self) -> None:
        from . import roles

        roles.connect()
