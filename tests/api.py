"""Helpers shared by the API tests (tests/*/test_api_*.py)."""

from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def user_with(*perms: str, username: str = "api-user") -> User:
    """A user holding exactly these model permissions ("app_label.codename"), freshly loaded (no perm cache)."""
    user = User.objects.create_user(username=username)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)


def user_in_role(role: str | None, username: str | None = None) -> User:
    """A user whose only permissions come from one role group (backorders/roles.py); None: no group at all."""
    user = User.objects.create_user(username=username or (role or "no-role").lower().replace(" ", "-"))
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def token_client(user: User | None) -> APIClient:
    """An APIClient authenticated by the user's DRF token; anonymous (no credentials) for None."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def client_with(*perms: str, username: str = "api-user") -> APIClient:
    """An APIClient authenticated by a DRF token of a user holding exactly these model permissions."""
    return token_client(user_with(*perms, username=username))
