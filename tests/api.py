"""Helpers shared by the API tests (tests/*/test_api_*.py)."""

from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def user_with(*perms: str, username: str = "api-user") -> User:
    """A user holding exactly these model permissions ("app_label.codename"), freshly loaded (no perm cache)."""
    user = User.objects.create_user(username=username)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)


def client_with(*perms: str, username: str = "api-user") -> APIClient:
    """An APIClient authenticated by a DRF token of a user holding exactly these model permissions."""
    token = Token.objects.create(user=user_with(*perms, username=username))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
