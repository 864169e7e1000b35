from datetime import date

from django.core.management.base import BaseCommand, CommandError

from backorders.services.compliance import backorders_scan


class Command(BaseCommand):
    help = (
        "Decide every due delay notice, renewed notice, deadline, cancellation offer and status update for all "
        "open lines as of a date (default today). Idempotent: a second run for the same day changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", help="Decide as if today were this date (YYYY-MM-DD).")
        parser.add_argument("--batch", type=int, default=500, help="Lines per transaction (default 500).")

    def handle(self, *args, **options) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of must be a date like 2026-11-22, not {options['as_of']!r}.") from exc
        result = backorders_scan(as_of=as_of, batch_size=max(1, options["batch"]), progress=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"Scan as of {as_of or 'today'} done: {result}."))
