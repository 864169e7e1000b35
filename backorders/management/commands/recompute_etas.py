from datetime import date

from django.core.management.base import BaseCommand, CommandError

from backorders.services.eta import etas_recompute_all


class Command(BaseCommand):
    help = "Re-peg the ETA of every waiting backorder, product by product (nightly; safe to run any time)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", help="Compute as if today were this date (YYYY-MM-DD).")
        parser.add_argument("--batch", type=int, default=200, help="At most this many products per transaction.")
        parser.add_argument(
            "--lines", type=int, default=20_000, help="At most this many waiting lines per transaction (default 20000)."
        )

    def handle(self, *args, **options) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of must be a date like 2026-11-22, not {options['as_of']!r}.") from exc

        products = 0

        def progress(done: int, total: int, changed: int) -> None:
            nonlocal products
            products = total
            self.stdout.write(f"  {done}/{total} products, {changed} ETAs changed so far")

        changed = etas_recompute_all(
            as_of=as_of, max_products=max(1, options["batch"]), max_lines=max(1, options["lines"]), progress=progress
        )
        self.stdout.write(
            self.style.SUCCESS(f"Recomputed ETAs for {products} products: {changed} waiting lines changed.")
        )
