"""The Idempotency-Key header on API writes (see backorders/idempotency.py for how a key is kept)."""

import functools
import json
import re
from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from backorders.idempotency import KEY_MAX_LENGTH, KEY_PATTERN, StoredResponse, idempotent_call
from config.api.schema import ErrorSerializer

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Location",)

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    HEADER,
    type={"type": "string", "minLength": 1, "maxLength": KEY_MAX_LENGTH, "pattern": KEY_PATTERN},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe: a request repeated with the same key (and the same body) within the key's lifetime "
        "(IDEMPOTENCY_KEY_TTL_HOURS, default 24 hours) runs once; every repeat gets the first response again, "
        f"with `{REPLAYED_HEADER}: true`. Keys belong to the caller (user). Only a successful response is kept: "
        "after an error the key is free again. Up to 255 visible ASCII characters, e.g. a UUID."
    ),
)

REPLAYED_RESPONSE_HEADER = OpenApiParameter(
    REPLAYED_HEADER,
    type=str,
    enum=["true"],
    location=OpenApiParameter.HEADER,
    description="Present (`true`) when this is the stored response of an earlier request with the same key.",
    response=[200, 201],
)

KEY_REUSED = OpenApiResponse(
    ErrorSerializer,
    description=(
        "`idempotency_key_reused`: this Idempotency-Key was already used for a different request (another "
        "endpoint or body). Nothing was changed."
    ),
)

_key_pattern = re.compile(KEY_PATTERN)


def idempotent(handler: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a view action (after its permission checks): with an Idempotency-Key header it runs once per key.

    Without the header the action runs as usual. The stored and the first response are the same JSON.
    """

    @functools.wraps(handler)
    def wrapper(view, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not _key_pattern.fullmatch(key):
            raise serializers.ValidationError(
                {HEADER: [f"Must be 1 to {KEY_MAX_LENGTH} visible ASCII characters without spaces (e.g. a UUID)."]}
            )
        body = request.data  # parsed before the key is claimed: malformed JSON is a 400 that claims nothing

        def run() -> StoredResponse:
            response = handler(view, request, *args, **kwargs)
            return StoredResponse(
                status=response.status_code,
                body=json.loads(JSONRenderer().render(response.data)) if response.data is not None else None,
                headers={name: response[name] for name in KEPT_HEADERS if response.has_header(name)},
            )

        stored, replayed = idempotent_call(
            user_id=request.user.pk,
            key=key,
            endpoint=f"{request.method} {request.path}",
            body=body,
            run=run,
        )
        response = Response(stored.body, status=stored.status, headers=stored.headers)
        if replayed:
            response[REPLAYED_HEADER] = "true"
        return response

    return wrapper
