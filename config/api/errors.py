"""Every API error is JSON {code, detail, fields?}; never an HTML page, never a 500 for bad input."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.urls import is_valid_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.exceptions import DomainError

_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "malformed_json",
    exceptions.Throttled: "throttled",
}


def _flatten(detail: object, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"lines[1].sku": ["..."]}.

    Nested serializers give dicts, list fields give lists, and ListSerializer (many=True) gives
    {index: errors} keyed by the position of each bad item.
    """
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a ListSerializer's errors: {index: errors} for the bad items only
                path = f"{prefix}[{key}]"
            elif key == "non_field_errors":
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{key}" if prefix else key
            out.update(_flatten(value, path))
    elif isinstance(detail, list):
        if detail and all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}[{i}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()))
        response.data = {
            "code": "invalid",
            "detail": f"Invalid input: {first[0]}: {first[1][0]}" if first[0] != "non_field_errors" else first[1][0],
            "fields": fields,
        }
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        response.data = {"code": _CODES.get(type(exc), getattr(exc, "default_code", "error")), "detail": str(detail)}
    return response


@csrf_exempt  # a POST to a wrong path is a 404 like any other, not a CSRF failure page (HTML)
def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """404 JSON for a path under /api/ that no endpoint answers, whatever the method and DEBUG.

    Routed as the last pattern under /api/v1/ (config/api/urls.py) so Django's HTML 404 page (DEBUG) and
    APPEND_SLASH's redirect (which loses a POST body, and is a 500 under DEBUG) never answer an API call.
    """
    detail = "No such API endpoint. See /api/docs/."
    if not request.path.endswith("/") and is_valid_path(f"{request.path_info}/", getattr(request, "urlconf", None)):
        detail = f"No such API endpoint. Did you mean {request.path}/ (with a trailing slash)? See /api/docs/."
    return JsonResponse({"code": "not_found", "detail": detail}, status=status.HTTP_404_NOT_FOUND)


def json_404(request, exception=None) -> JsonResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_500(request) -> JsonResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "server_error", "detail": "Something went wrong on our side; nothing was changed. Try again."},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    from django.views.defaults import server_error

    return server_error(request)
