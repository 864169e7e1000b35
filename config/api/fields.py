"""Strict input fields for the API: a JSON integer is an integer, a JSON boolean is a boolean.

DRF's defaults coerce ("3" -> 3, 1.0 -> 1, "yes" -> True). An integration that sends a string where
a number belongs has a bug we want it to see, so these reject anything but the JSON type itself. In the
same spirit: names are strings, dates stay within a planning horizon, and unknown keys are refused.
"""

from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import serializers

# Upper bound on units in one request (a line quantity, a stock change). Far above any real order and
# far below the database's integer range, so a typo or a fuzzer gets a 400, never an overflow (500).
MAX_UNITS = 1_000_000

# The ranges of Django's positive (small) integer columns on PostgreSQL, stated so the API (and its
# schema) accepts the same values whichever database runs underneath.
MAX_SMALL_INTEGER = 32_767
MAX_INTEGER = 2_147_483_647

# Dates in plans (arrivals, ETAs, promised ship dates) lie at most this far ahead; see PlanningDateField.
MAX_YEARS_AHEAD = 10

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


class RejectUnknownFieldsMixin:
    """An input serializer that answers 400 for a key it does not accept, instead of silently ignoring it.

    A misspelled optional field ("expected_dat") or a read-only one ("quantity" on an ETA edit) would
    otherwise be dropped and the request would "succeed" without doing what the caller meant.
    """

    def to_internal_value(self, data: object) -> object:
        if isinstance(data, dict):
            accepted = [name for name, field in self.fields.items() if not field.read_only]
            unknown = [name for name in data if name not in accepted]
            if unknown:
                message = f"Not accepted here. Accepted fields: {', '.join(accepted)}."
                raise serializers.ValidationError({name: [message] for name in unknown})
        return super().to_internal_value(data)


class StrictSlugRelatedField(serializers.SlugRelatedField):
    """A related object named by a string (SKU, warehouse code, supplier name); a number is not taken for one.

    An integration that sends an id where a name belongs gets "invalid", not a confusing "no such name '7'".
    A NUL character is refused before the lookup (PostgreSQL rejects it in a query: a 500, not a 400).
    """

    default_error_messages = {"null_characters": "Null characters are not allowed."}

    def to_internal_value(self, data: object) -> object:
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            self.fail("null_characters")
        return super().to_internal_value(data)


class PlanningDateField(serializers.DateField):
    """A date in a plan (an arrival, an ETA, a promised ship date): at most MAX_YEARS_AHEAD years from today.

    Anything later is a typo (or a fuzzer), and refusing it keeps date arithmetic (ETA = arrival + handling
    days) far from the end of the calendar, where it would overflow into a 500.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.validators.append(_within_planning_horizon)


def _within_planning_horizon(value: date) -> None:
    latest = timezone.localdate() + timedelta(days=365 * MAX_YEARS_AHEAD)
    if value > latest:
        raise serializers.ValidationError(f"Must be at most {MAX_YEARS_AHEAD} years ahead (by {latest.isoformat()}).")
