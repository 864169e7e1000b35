"""Token authentication: DRF's, with the token, its user and the user's permissions read by one plain statement.

Every API call authenticates and then checks a model permission, so both costs are paid on every request: DRF's
`select_related("user").get(key=...)` spends about three times as long building its SQL as the database spends
answering it, and the permission check is a second query. The same rows are read here by one fixed statement
(a raw query), with DRF's answers for an unknown key and an inactive user; the user's permissions (their own and
their groups', every permission for a superuser: what config.auth_backends.ModelBackend reads) come with it and
are kept where the backend keeps them for the request (`_perm_cache`), so the check reads nothing more.
"""

import contextlib
import json
import weakref
from datetime import UTC
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from inventory.dbutils import RowColumns


@cache
def _token_user_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    user = get_user_model()._meta
    user_pk = f"u.{quote(user.pk.column)}"
    token = {name: quote(Token._meta.get_field(name).column) for name in ("key", "user", "created")}
    own = user.get_field("user_permissions").remote_field.through._meta
    member = user.get_field("groups").remote_field.through._meta
    granted = Group._meta.get_field("permissions").remote_field.through._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    user_fk, group_fk = user.model_name, Group._meta.model_name
    permission = Permission._meta
    content_type = ContentType._meta
    granted_to_user = (
        f"SELECT ct.{quote('app_label')} || '.' || p.{quote('codename')} AS name "
        f"FROM {quote(permission.db_table)} p "
        f"JOIN {quote(content_type.db_table)} ct ON ct.{quote('id')} = p.{column(permission, 'content_type')} "
        f"WHERE u.{quote('is_superuser')} "
        f"OR p.{quote('id')} IN (SELECT {column(own, 'permission')} FROM {quote(own.db_table)} "
        f"WHERE {column(own, user_fk)} = {user_pk}) "
        f"OR p.{quote('id')} IN (SELECT g.{column(granted, 'permission')} FROM {quote(granted.db_table)} g "
        f"JOIN {quote(member.db_table)} m ON m.{column(member, group_fk)} = g.{column(granted, group_fk)} "
        f"WHERE m.{column(member, user_fk)} = {user_pk})"
    )
    if vendor == "postgresql":
        permissions = f"ARRAY({granted_to_user})"
    else:  # SQLite: the same names as a JSON array
        permissions = f"(SELECT json_group_array(name) FROM ({granted_to_user}))"
    return (
        f"SELECT {_user_columns().select()}, t.{token['created']} AS token_created, "
        f"{permissions} AS token_user_permissions "
        f"FROM {quote(user.db_table)} u "
        f"JOIN {quote(Token._meta.db_table)} t ON t.{token['user']} = {user_pk} "
        f"WHERE t.{token['key']} = %s"
    )


def _token_user(key: str) -> AbstractBaseUser | None:
    """The user of this token key (None: no such token), with `token_created` and `token_user_permissions`.

    The row becomes a user through inventory.dbutils.RowColumns (Model.from_db and the ORM's converters): a
    RawQuerySet would map its columns to fields again on every request, which costs more than the statement."""
    sql = _token_user_sql(connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            row = _fetch_prepared(cursor, sql, key)
        else:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
    if row is None:
        return None
    columns = _user_columns()
    user = columns.instance(connection.alias, row)
    user.token_created, user.token_user_permissions = row[len(columns.fields) :]
    return user


@cache
def _user_columns() -> RowColumns:
    return RowColumns(get_user_model(), "u", 0)


# Planning the statement (its permission subqueries) costs PostgreSQL twice what running it does, on every API
# call; prepared once per database connection (connections live for CONN_MAX_AGE), it is planned once.
_PREPARED_NAME = "backorders_token_user"
_prepared: "weakref.WeakKeyDictionary[object, bool]" = weakref.WeakKeyDictionary()  # connection: prepared or not


def _fetch_prepared(cursor, sql: str, key: str) -> tuple | None:
    """The statement's row, through a prepared statement of this connection where one can be kept.

    Only outside a transaction (the API authenticates before it opens one), where a failed statement costs
    nothing else. A prepared statement that went missing (a pooler that resets sessions) or stale (a migration
    changed the user table) is prepared again, once; if that fails too, this connection runs the plain
    statement from then on (e.g. behind PgBouncer's transaction pooling, which keeps no session)."""
    raw = connection.connection
    state = _prepared.get(raw)
    if state is not False and not connection.in_atomic_block:
        for attempt in range(2):
            try:
                if state is not True:
                    if attempt:
                        _deallocate(cursor)
                    cursor.execute(f"PREPARE {_PREPARED_NAME}(text) AS {sql.replace('%s', '$1')}")
                    _prepared[raw] = state = True
                cursor.execute(f"EXECUTE {_PREPARED_NAME}(%s)", [key])
                return cursor.fetchone()
            except DatabaseError:
                state = None
        _prepared[raw] = False
    cursor.execute(sql, [key])
    return cursor.fetchone()


def _deallocate(cursor) -> None:
    with contextlib.suppress(DatabaseError):  # it did not exist
        cursor.execute(f"DEALLOCATE {_PREPARED_NAME}")


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, exactly as rest_framework.authentication.TokenAuthentication answers it."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user = _token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        granted = user.token_user_permissions
        # Kept where config.auth_backends.ModelBackend keeps a user's permissions for the request.
        user._perm_cache = set(json.loads(granted) if isinstance(granted, str) else granted)
        created = user.token_created
        if settings.USE_TZ and timezone.is_naive(created):  # SQLite gives a raw column's datetime without its zone
            created = timezone.make_aware(created, UTC)
        token = Token(key=key, user=user, created=created)
        token._state.adding, token._state.db = False, user._state.db
        return user, token
