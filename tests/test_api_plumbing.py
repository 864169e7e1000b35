"""What every API request goes through: the token check, the permission check's model, the database connection.

Each was made cheaper (config/api/authentication.py, config/api/permissions.py, CONN_MAX_AGE in
config/settings/base.py); these tests hold them to what they replaced.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token
from rest_framework.test import APIRequestFactory

from config.api.authentication import TokenAuthentication

ROOT = Path(__file__).resolve().parent.parent


def _outcome(backend: authentication.TokenAuthentication, key: str) -> tuple:
    try:
        user, token = backend.authenticate_credentials(key)
    except exceptions.AuthenticationFailed as exc:
        return ("failed", str(exc.detail))
    fields = {f.attname: getattr(user, f.attname) for f in User._meta.concrete_fields}
    return ("ok", fields, user._state.adding, user._state.db, token.key, token.user_id, token.created)


@pytest.mark.django_db
def test_token_authentication_answers_as_drf_does_in_one_statement():
    active = Token.objects.create(
        user=User.objects.create_user("active", email="a@example.com", first_name="Ann", last_login=timezone.now())
    )
    inactive = Token.objects.create(user=User.objects.create_user("gone", is_active=False))
    keys = [active.key, inactive.key, "0" * 40, ""]

    with CaptureQueriesContext(connection) as ours:
        outcomes = [_outcome(TokenAuthentication(), key) for key in keys]

    assert outcomes == [_outcome(authentication.TokenAuthentication(), key) for key in keys]
    assert [outcome[0] for outcome in outcomes] == ["ok", "failed", "failed", "failed"]
    assert outcomes[1][1] == "User inactive or deleted."
    assert len(ours) == len(keys)


@pytest.mark.django_db
def test_a_request_authenticated_by_token_carries_the_user_and_the_token():
    user = User.objects.create_user("storefront")
    token = Token.objects.create(user=user)
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {token.key}")

    authenticated_user, auth = TokenAuthentication().authenticate(request)

    assert (authenticated_user.pk, auth.pk, auth.user.pk) == (user.pk, token.pk, user.pk)
    assert authenticated_user.has_perm("orders.add_salesorder") is False  # a real user: permissions load as usual


def _api_views() -> list[type]:
    found, pending = [], list(get_resolver().url_patterns)
    while pending:
        entry = pending.pop()
        if isinstance(entry, URLResolver):
            pending.extend(entry.url_patterns)
        elif isinstance(entry, URLPattern) and (view := getattr(entry.callback, "cls", None)) is not None:
            found.append(view)
    return found


def test_every_api_view_checks_permissions_on_the_model_its_queryset_returns():
    """config.api.permissions.ModelPermissions reads the model from the declared `queryset`; get_queryset must
    return the same model, for every action."""
    views = {view for view in _api_views() if getattr(view, "queryset", None) is not None}
    assert len(views) >= 8  # orders, backorders, purchase orders, products, warehouses, notifications, ...
    for view_class in views:
        for action in ("list", "retrieve", "create", "partial_update", "cancel", "receive", None):
            view = view_class()
            view.action, view.request, view.kwargs, view.format_kwarg = action, None, {}, None
            assert view.get_queryset().model is view_class.queryset.model, (view_class, action)


def _settings_with(**env: str) -> dict:
    code = (
        "import json; from config.settings import base; "
        "db = base.DATABASES['default']; print(json.dumps([db['CONN_MAX_AGE'], db['CONN_HEALTH_CHECKS']]))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("CONN_MAX_AGE", "DATABASE_URL")}
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def test_connections_are_kept_on_postgresql_and_checked_before_reuse():
    assert _settings_with(DATABASE_URL="postgres://postgres@127.0.0.1:5432/x") == [600, True]
    assert _settings_with(DATABASE_URL="postgres://postgres@127.0.0.1:5432/x", CONN_MAX_AGE="30") == [30, True]
    assert _settings_with(DATABASE_URL="sqlite:////tmp/x.sqlite3") == [0, True]


def test_loading_the_wsgi_app_opens_no_database_connection():
    """gunicorn --preload (Procfile) loads config.wsgi in the master and forks it: a connection opened while
    loading would be shared by every worker."""
    code = (
        "import config.wsgi; from django.db import connections; "
        "print([alias for alias in connections if connections[alias].connection is not None])"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    completed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.django_db
def test_permissions_are_read_in_one_statement_and_match_djangos_backend():
    from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
    from django.contrib.auth.models import Group, Permission

    from config.auth_backends import ModelBackend

    view_order = Permission.objects.get(codename="view_salesorder")
    add_order = Permission.objects.get(codename="add_salesorder")
    view_product = Permission.objects.get(codename="view_product")
    shop = Group.objects.create(name="shop")
    shop.permissions.add(add_order, view_order)
    readers = Group.objects.create(name="readers")
    readers.permissions.add(view_product, view_order)
    own = User.objects.create_user("own")
    own.user_permissions.add(view_product)
    grouped = User.objects.create_user("grouped")
    grouped.groups.add(shop, readers)
    both = User.objects.create_user("both")
    both.user_permissions.add(add_order)
    both.groups.add(readers)
    inactive = User.objects.create_user("inactive", is_active=False)
    inactive.groups.add(shop)
    users = [own, grouped, both, User.objects.create_user("none"), inactive, User.objects.create_superuser("root")]

    def fresh(user: User) -> User:
        return User.objects.get(pk=user.pk)

    expected = [DjangoModelBackend().get_all_permissions(fresh(user)) for user in users]
    for user, want in zip(users, expected, strict=True):
        user = fresh(user)
        with CaptureQueriesContext(connection) as queries:
            got = ModelBackend().get_all_permissions(user)
            again = ModelBackend().get_all_permissions(user)
        assert got == want == again, user.username
        assert len(queries) == (0 if user.username == "inactive" else 1), user.username
    assert expected[1] == {"orders.add_salesorder", "orders.view_salesorder", "inventory.view_product"}
    assert expected[2] == {"orders.add_salesorder", "orders.view_salesorder", "inventory.view_product"}
    assert expected[3] == set()
    assert fresh(users[2]).has_perm("orders.add_salesorder")
    assert not fresh(users[0]).has_perm("orders.add_salesorder")


@pytest.mark.django_db
def test_the_token_read_brings_the_users_permissions_and_the_check_reads_nothing_more():
    from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
    from django.contrib.auth.models import Group, Permission

    add_order = Permission.objects.get(codename="add_salesorder")
    view_product = Permission.objects.get(codename="view_product")
    shop = Group.objects.create(name="shop")
    shop.permissions.add(add_order)
    own = User.objects.create_user("own")
    own.user_permissions.add(view_product)
    grouped = User.objects.create_user("grouped")
    grouped.groups.add(shop)
    both = User.objects.create_user("both")
    both.user_permissions.add(view_product)
    both.groups.add(shop)
    users = [own, grouped, both, User.objects.create_user("none"), User.objects.create_superuser("root")]

    for user in users:
        key = Token.objects.create(user=user).key
        want = DjangoModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
        with CaptureQueriesContext(connection) as queries:
            authenticated, _ = TokenAuthentication().authenticate_credentials(key)
            allowed = authenticated.has_perm("orders.add_salesorder")
        assert authenticated.get_all_permissions() == want, user.username
        assert allowed == ("orders.add_salesorder" in want or user.is_superuser), user.username
        assert len(queries) == 1, user.username
    assert DjangoModelBackend().get_all_permissions(User.objects.get(username="both")) == {
        "orders.add_salesorder",
        "inventory.view_product",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_token_authentication_outside_a_transaction_runs_a_prepared_statement_and_survives_losing_it(monkeypatch):
    from config.api import authentication as auth

    user = User.objects.create_user("prepared", email="p@example.com")
    token = Token.objects.create(user=user)
    drf = [_outcome(authentication.TokenAuthentication(), key) for key in (token.key, "0" * 40)]

    def ours() -> list:
        with CaptureQueriesContext(connection) as queries:
            outcomes = [_outcome(TokenAuthentication(), key) for key in (token.key, "0" * 40)]
        assert outcomes == drf
        return [q["sql"].split()[0] for q in queries.captured_queries]

    connection.close()  # a new connection: nothing prepared on it yet
    assert ours() == ["PREPARE", "EXECUTE", "EXECUTE"]
    assert ours() == ["EXECUTE", "EXECUTE"]
    connection.cursor().execute("DEALLOCATE ALL")  # e.g. a pooler reset the session
    assert ours() == ["EXECUTE", "DEALLOCATE", "PREPARE", "EXECUTE", "EXECUTE"]

    connection.close()
    monkeypatch.setattr(auth, "_PREPARED_NAME", "not a name")  # PREPARE fails every time (as behind a pooler)
    assert ours() == ["PREPARE", "DEALLOCATE", "PREPARE", "SELECT", "SELECT"]  # then the plain statement, for good
    assert ours() == ["SELECT", "SELECT"]
