"""The OpenAPI schema at /api/schema/ is the contract: schemathesis (property-based, from PyPI) generates
requests for every operation, valid and invalid, and checks that the API never answers 5xx and that every
response (status code, content type, headers, body) is one the schema documents.

The schema is loaded from the running app over WSGI, in process; requests carry a superuser's token. The
number of examples is bounded and generation derandomised, so the run is the same every time and quick.
"""

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET

from .api import token_client
from .test_api_permissions import CALLS, Call, make_world

MAX_EXAMPLES = 15
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True, scope="module")
def _requests_keep_the_test_transaction():
    """Switch off the request signals that close the database connection (as Django's test client does), so
    requests through the WSGI app run inside the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _load_schema() -> schemathesis.BaseSchema:
    """/api/schema/ from the app itself, over WSGI in process (no server, no database access)."""
    request_started.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
    )
    return schema


schema = _load_schema()


@pytest.fixture
def world(db) -> dict[str, int]:
    """The permission matrix's data: its SKU and warehouse are also those of the schema's request examples."""
    return make_world()


@pytest.fixture
def token(world) -> str:
    user = User.objects.create_superuser("contract", "contract@example.com", "x")
    return Token.objects.create(user=user).key


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


def _operation_for(call: Call, ids: dict[str, int]) -> tuple[schemathesis.APIOperation, dict[str, str]]:
    """The schema's operation for a matrix call, and the path parameters that make its concrete path."""
    concrete = f"/api/v1/{call.path.format(**ids)}".split("/")
    for result in schema.get_all_operations():
        operation = result.ok()
        template = operation.path.split("/")
        if operation.method.lower() != call.method or len(template) != len(concrete):
            continue
        pairs = list(zip(template, concrete, strict=True))
        if all(t == c or t.startswith("{") for t, c in pairs):
            return operation, {t.strip("{}"): c for t, c in pairs if t.startswith("{")}
    raise AssertionError(f"{call} is not in the schema")


def test_the_schema_documents_every_endpoint_of_the_permission_matrix_and_no_other():
    ids = {"backorder": 1, "po": 1, "notification": 1}
    matched = {(operation.method, operation.path) for operation, _ in (_operation_for(call, ids) for call in CALLS)}
    documented = {(result.ok().method, result.ok().path) for result in schema.get_all_operations()}
    assert matched == documented


@pytest.mark.django_db
@pytest.mark.parametrize("call", CALLS, ids=str)
def test_every_operation_on_real_data_succeeds_with_a_documented_response(world, token, call):
    """The fuzzer mostly meets unknown ids and SKUs; this sends each operation one valid request on real data,
    so every success response (including details, cancel, receive, ETA edits) is checked against the schema."""
    operation, path_parameters = _operation_for(call, world)
    case = operation.Case(
        path_parameters=path_parameters,
        body=call.body if call.body is not None else NOT_SET,
        media_type="application/json" if call.body is not None else None,
    )

    response = case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)

    assert response.status_code == call.success, response.text


# --- consistency: what every operation promises --------------------------------------------------------


def _operations() -> list[tuple[str, str, dict]]:
    return [
        (method, path, operation)
        for path, item in schema.raw_schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_documents_401_and_403_and_its_errors_as_json_error_bodies():
    error_schemas = {"Error", "OrderConflictError", "StockAllocatedError"}
    for method, path, operation in _operations():
        responses = operation["responses"]
        assert {"401", "403"} <= set(responses), f"{method} {path}"
        for status, response in responses.items():
            if status.startswith("4"):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.rsplit("/", 1)[1] in error_schemas, f"{method} {path} {status}: {ref}"


def test_every_list_is_paginated_in_the_schema_and_over_http(token):
    lists = [
        path
        for method, path, operation in _operations()
        if method == "get" and "{" not in path and path != "/api/v1/policy/"
    ]
    assert len(lists) == 6
    client = token_client(User.objects.get(username="contract"))
    for path in lists:
        ok = schema.raw_schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].rsplit("/", 1)[1].startswith("Paginated"), path

        body = client.get(path).json()

        assert set(body) == {"count", "next", "previous", "results"}, path
        assert body["count"] >= 1, path  # the fixture made one of each


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["DEBUG off", "DEBUG on"])
@pytest.mark.parametrize("method", ["get", "post", "patch", "put", "delete"])
def test_unknown_api_paths_are_404_json_whatever_the_method_and_debug(client, method, debug):
    with override_settings(DEBUG=debug):
        unknown = getattr(client, method)("/api/v1/no-such-thing/")
        no_slash = getattr(client, method)("/api/v1/orders")

    assert unknown.status_code == no_slash.status_code == 404
    assert unknown["Content-Type"] == no_slash["Content-Type"] == "application/json"
    assert unknown.json() == {"code": "not_found", "detail": "No such API endpoint. See /api/docs/."}
    assert no_slash.json() == {
        "code": "not_found",
        "detail": "No such API endpoint. Did you mean /api/v1/orders/ (with a trailing slash)? See /api/docs/.",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["0", "abc", "2"])
def test_a_page_that_does_not_exist_is_400_naming_page(token, page):
    client = token_client(User.objects.get(username="contract"))

    response = client.get(f"/api/v1/products/?page={page}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["fields"]) == ["page"]
