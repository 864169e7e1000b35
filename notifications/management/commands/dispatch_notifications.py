from django.core.management.base import BaseCommand

from notifications.services import notifications_dispatch


class Command(BaseCommand):
    help = "Enqueue every pending, due notification (catches what a broker outage or a quiet period held back)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="At most this many per run (default 500).")

    def handle(self, *args, **options) -> None:
        count = notifications_dispatch(limit=options["limit"])
        self.stdout.write(self.style.SUCCESS(f"{count} pending notification(s) handed to the workers."))
