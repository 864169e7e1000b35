from datetime import date

from django.core.management.base import BaseCommand, CommandError

from backorders.models import Backorder
from backorders.services.eta import etas_recompute


class Command(BaseCommand):
    help = "Re-peg the ETA of every waiting backorder, product by product (nightly; safe to run any time)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", help="Compute as if today were this date (YYYY-MM-DD).")
        parser.add_argument("--batch", type=int, default=200, help="Products per transaction (default 200).")

    def handle(self, *args, **options) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = date.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of must be a date like 2026-11-22, not {options['as_of']!r}.") from exc
        product_ids = sorted(
            set(Backorder.objects.filter(status=Backorder.Status.WAITING).values_list("product_id", flat=True))
        )
        total = len(product_ids)
        changed = 0
        batch = max(1, options["batch"])
        for start in range(0, total, batch):
            chunk = product_ids[start : start + batch]
            changed += etas_recompute(product_ids=chunk, as_of=as_of)
            self.stdout.write(f"  {min(start + batch, total)}/{total} products, {changed} ETAs changed so far")
        self.stdout.write(self.style.SUCCESS(f"Recomputed ETAs for {total} products: {changed} waiting lines changed."))
