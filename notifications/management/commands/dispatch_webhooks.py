from django.core.management.base import BaseCommand

from notifications.webhooks import DISPATCH_LIMIT, webhooks_dispatch


class Command(BaseCommand):
    help = (
        "Hand every pending, due webhook delivery to the workers (catches broker outages, retries after backoff, "
        "deliveries a crashed worker left behind). Without a broker (embedded mode) it delivers them right here."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--limit", type=int, default=DISPATCH_LIMIT, help=f"At most this many per run (default {DISPATCH_LIMIT})."
        )

    def handle(self, *args, **options) -> None:
        count = webhooks_dispatch(limit=options["limit"])
        self.stdout.write(self.style.SUCCESS(f"{count} pending webhook delivery(ies) handed to the workers."))
