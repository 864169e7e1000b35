from django.core.management.base import BaseCommand, CommandError

from backorders.invariants import invariant_violations


class Command(BaseCommand):
    help = (
        "Check the inventory invariants: 0 <= allocated <= on_hand, on_hand == ledger sum, allocated == live "
        "allocations, line quantities add up, backordered == waiting backorder. Exit 1 naming each violation."
    )

    def handle(self, *args, **options) -> None:
        problems = invariant_violations()
        if problems:
            for problem in problems:
                self.stderr.write(f"VIOLATION: {problem}")
            raise CommandError(f"{len(problems)} invariant violation(s) found.", returncode=1)
        self.stdout.write(self.style.SUCCESS("All inventory invariants hold."))
