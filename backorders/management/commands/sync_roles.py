from django.core.management.base import BaseCommand

from backorders.roles import ROLE_PERMISSIONS, sync_roles


class Command(BaseCommand):
    help = "Create the staff role groups and set their permissions (also runs after every migrate)."

    def handle(self, *args, **options) -> None:
        sync_roles()
        self.stdout.write(self.style.SUCCESS(f"Roles in sync: {', '.join([*ROLE_PERMISSIONS, 'Inventory manager'])}."))
