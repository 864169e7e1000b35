"""OrderCreateSerializer checks the usual order body directly (backorders/api/serializers.py `_usual_order`) instead
of building its declared fields; on any body, valid or not, it must decide and answer exactly as the fields do.

Generated bodies mix valid values with every near miss the fields refuse or change (padding, blanks, lengths at
and past the limit, NUL and lone surrogates, numbers and booleans where strings belong and the reverse, missing and
unknown keys, empty and over-long line lists).
"""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from backorders.api.serializers import _ORDER_OPTIONS, MAX_LINES, OrderCreateSerializer, _usual_order
from config.api.fields import MAX_UNITS


class FieldsOnly(OrderCreateSerializer):
    """The same serializer deciding by its declared fields alone (the reference)."""

    def run_validation(self, data=serializers.empty):
        return serializers.Serializer.run_validation(self, data)


def mostly(valid: st.SearchStrategy, near_misses: list) -> st.SearchStrategy:
    """Nine times in ten a valid value, else one the fields refuse."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(near_misses) if n == 9 else valid)


def text_values(valid: list[str], limit: int) -> tuple[list, list]:
    padded = [f"  {valid[0]}\t", "x" * limit, f" {'x' * limit} ", "\u00e9l\u00e8ve"]
    wrong = ["", "   ", "x" * (limit + 1), "a\x00b", "a\ud800b", 7, 1.5, True, None, ["x"], {"x": 1}]
    return valid + padded, wrong


def texts(valid: list[str], limit: int) -> st.SearchStrategy:
    good, wrong = text_values(valid, limit)
    return mostly(st.sampled_from(good), wrong)


LONG_LOCAL = "a" * 64
EMAILS = (
    [
        "ann@example.com",
        " Ann@Example.COM ",
        "ann@localhost",
        "b.c+d@example.co.uk",
        f"{LONG_LOCAL}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com",  # 254 characters
    ],
    [
        f"{LONG_LOCAL}@{'b' * 63}.{'c' * 63}.{'d' * 58}.com",  # 255
        "not-an-email",
        "a@b",
        "ann@exa mple.com",
        "",
        "  ",
        "ann\x00@example.com",
        "ann\udfff@example.com",
        3,
        None,
        False,
    ],
)
emails = mostly(st.sampled_from(EMAILS[0]), EMAILS[1])
TIERS = (["standard", "loyal", "vip"], ["VIP", "", "gold", 1, None])
QUANTITIES = ([1, 2, MAX_UNITS], [MAX_UNITS + 1, 0, -1, True, False, 1.0, "1", None, [1]])
FLAGS = ([True, False], [0, 1, None, "true", "false"])
customers = mostly(
    st.fixed_dictionaries(
        {"email": emails, "name": texts(["Ann Example", "Zoë"], 200)},
        optional={"tier": mostly(st.sampled_from(TIERS[0]), TIERS[1])},
    ),
    [None, "ann@example.com", [], {}, {"email": "ann@example.com"}, {"email": "a@b.co", "name": "A", "phone": "5"}],
)
quantities = mostly(st.sampled_from([1, 2, MAX_UNITS]), [MAX_UNITS + 1, 0, -1, True, False, 1.0, "1", None, [1]])
line = mostly(
    st.fixed_dictionaries({"sku": texts(["MUG-1", "KETTLE"], 64), "quantity": quantities}),
    [None, "MUG", [], {}, {"sku": "MUG"}, {"sku": "MUG", "quantity": 1, "note": "gift"}],
)
line_lists = mostly(
    st.lists(line, min_size=1, max_size=3), [None, {}, "MUG", [], [{"sku": "MUG", "quantity": 1}] * (MAX_LINES + 1)]
)
flags = mostly(st.sampled_from(FLAGS[0]), FLAGS[1])
usual_bodies = st.fixed_dictionaries(
    {"customer": customers, "lines": line_lists},
    optional={"ship_complete": flags, "credit_applied": flags, "cash_on_delivery": flags, "delivery_essential": flags},
)
other_keys = st.fixed_dictionaries(
    {},
    optional={
        "number": st.sampled_from(["SO-1", "SO 1", ""]),
        "ship_by": st.sampled_from(["2030-01-15", None, "soon"]),
        "unknown": st.just(1),
    },
)
bodies = st.one_of(
    usual_bodies,
    usual_bodies,
    st.tuples(usual_bodies, other_keys).map(lambda pair: {**pair[0], **pair[1]}),
    usual_bodies.map(lambda body: {k: v for k, v in body.items() if k not in ("customer", "lines")}),
    usual_bodies.map(lambda body: [body]),
    st.sampled_from([None, 1, "order"]),
)


def _typed(value: object) -> object:
    """A value with its types spelled out, so True never equals 1 and a tuple never equals a list."""
    if isinstance(value, dict):
        return {"dict": {key: _typed(item) for key, item in value.items()}}
    if isinstance(value, list | tuple):
        return {type(value).__name__: [_typed(item) for item in value]}
    return (type(value).__name__, value)


def _decide(serializer_class: type, body: object) -> tuple:
    serializer = serializer_class(data=body)
    if serializer.is_valid():
        return ("valid", _typed(serializer.validated_data))
    return ("invalid", json.dumps(serializer.errors, sort_keys=True))


@settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_the_usual_order_check_decides_and_answers_as_the_declared_fields(body):
    assert _decide(OrderCreateSerializer, body) == _decide(FieldsOnly, body)


def _both(pools: tuple[list, list]) -> list:
    return [*pools[0], *pools[1]]


def _one_value_changed() -> list[object]:
    """A valid body with one value replaced by each value of its pool, valid or not (every near miss, surely)."""

    def body(email="ann@example.com", name="Ann", sku="MUG-1", quantity=1, **extra) -> dict:
        return {"customer": {"email": email, "name": name}, "lines": [{"sku": sku, "quantity": quantity}], **extra}

    cases: list[object] = []
    for email in _both(EMAILS):
        cases.append(body(email=email))
    for name in _both(text_values(["Ann"], 200)):
        cases.append(body(name=name))
    for sku in _both(text_values(["MUG-1"], 64)):
        cases.append(body(sku=sku))
    for quantity in _both(QUANTITIES):
        cases.append(body(quantity=quantity))
    for tier in _both(TIERS):
        cases.append({**body(), "customer": {"email": "a@example.com", "name": "A", "tier": tier}})
    for flag in _both(FLAGS):
        cases.extend(body(**{option: flag}) for option in _ORDER_OPTIONS)
    return cases


def test_every_single_near_miss_is_decided_as_the_declared_fields_decide():
    for body in _one_value_changed():
        assert _decide(OrderCreateSerializer, body) == _decide(FieldsOnly, body), body


def test_the_storefront_body_takes_the_direct_check():
    body = {
        "customer": {"email": "ann@example.com", "name": "Ann", "tier": "vip"},
        "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "KETTLE", "quantity": 1}],
        "ship_complete": True,
    }
    assert _usual_order(body) == {
        "customer": {"email": "ann@example.com", "name": "Ann", "tier": "vip"},
        "lines": [{"sku": "MUG-1", "quantity": 2}, {"sku": "KETTLE", "quantity": 1}],
        "ship_by": None,
        "ship_complete": True,
        "credit_applied": False,
        "cash_on_delivery": False,
        "delivery_essential": False,
    }
    assert _decide(OrderCreateSerializer, body) == _decide(FieldsOnly, body)


def test_nothing_the_direct_check_skips_is_declared_on_the_serializer():
    """The direct check stands in for the fields' own validation only: no serializer-level validators, validate()
    or validate_<field> hooks, and no field it does not know about (a new field must be added to both)."""
    serializer = OrderCreateSerializer()
    assert serializer.get_validators() == []
    assert type(serializer).validate is serializers.Serializer.validate
    assert not [name for name in serializer.fields if hasattr(serializer, f"validate_{name}")]
    assert set(serializer.fields) == {
        "customer",
        "lines",
        "ship_complete",
        "number",
        "ship_by",
        "credit_applied",
        "cash_on_delivery",
        "delivery_essential",
    }
    assert set(serializer.fields["customer"].fields) == {"email", "name", "tier"}
    assert set(serializer.fields["lines"].child.fields) == {"sku", "quantity"}
