"""Token authentication: DRF's, with the token and its user read by one plain statement.

Every API call authenticates, so its cost is paid on every request: DRF's `select_related("user").get(key=...)`
spends about three times as long building its SQL as the database spends answering it. The same row is read
here by a fixed statement (a raw query), with DRF's answers for an unknown key and an inactive user.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


@cache
def _token_user_sql() -> str:
    quote = connection.ops.quote_name
    user = get_user_model()._meta
    token = {name: quote(Token._meta.get_field(name).column) for name in ("key", "user", "created")}
    return (
        f"SELECT u.*, t.{token['created']} AS token_created FROM {quote(user.db_table)} u "
        f"JOIN {quote(Token._meta.db_table)} t ON t.{token['user']} = u.{quote(user.pk.column)} "
        f"WHERE t.{token['key']} = %s"
    )


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, exactly as rest_framework.authentication.TokenAuthentication answers it."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user = next(iter(get_user_model().objects.raw(_token_user_sql(), [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = Token(key=key, user=user, created=user.token_created)
        token._state.adding, token._state.db = False, user._state.db
        return user, token
