"""Strict input fields for the API: a JSON integer is an integer, a JSON boolean is a boolean.

DRF's defaults coerce ("3" -> 3, 1.0 -> 1, "yes" -> True). An integration that sends a string where
a number belongs has a bug we want it to see, so these reject anything but the JSON type itself.
"""

from django.db import IntegrityError, transaction
from rest_framework import serializers

# Upper bound on units in one request (a line quantity, a stock change). Far above any real order and
# far below the database's integer range, so a typo or a fuzzer gets a 400, never an overflow (500).
MAX_UNITS = 1_000_000

# The ranges of Django's positive (small) integer columns on PostgreSQL, stated so the API (and its
# schema) accepts the same values whichever database runs underneath.
MAX_SMALL_INTEGER = 32_767
MAX_INTEGER = 2_147_483_647

# Identifiers that appear in URLs (SKU, order number): no slash, no whitespace.
URL_SAFE_IDENTIFIER = r"^[^\s/]+$"


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "Must be a whole number (a JSON integer, not a string, decimal or boolean)."}

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false (a JSON boolean)."}

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


def _strict(field_class: type[serializers.Field]) -> type[serializers.Field]:
    if field_class is serializers.IntegerField:
        return StrictIntegerField
    if field_class is serializers.BooleanField:
        return StrictBooleanField
    return field_class


class StrictModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose integer and boolean model fields accept only JSON integers and booleans."""

    serializer_field_mapping = {
        model_field: _strict(field_class)
        for model_field, field_class in serializers.ModelSerializer.serializer_field_mapping.items()
    }


def save_unique(serializer: serializers.BaseSerializer, *, field: str, message: str) -> object:
    """serializer.save(), turning a lost race on a unique column into the same 400 the validator gives.

    The serializer's UniqueValidator catches the usual duplicate; two concurrent creates can both pass
    it, and then the database's unique constraint decides (never check-then-create).
    """
    try:
        with transaction.atomic():
            return serializer.save()
    except IntegrityError as exc:
        raise serializers.ValidationError({field: [message]}) from exc
