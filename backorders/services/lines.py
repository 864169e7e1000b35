"""Validation shared by every service that takes lines of (SKU, quantity)."""

from collections.abc import Mapping, Sequence
from typing import Protocol

from django.contrib.auth.models import AbstractBaseUser

from inventory.exceptions import InvalidInput
from inventory.models import Product


class SkuQuantity(Protocol):
    sku: str
    quantity: int


def is_quantity(value: object) -> bool:
    """A true whole number of at least 1 (not a bool, not a float, not a string)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def acting(user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    """The user to record as the actor, or None for anonymous/system callers."""
    return user if user is not None and user.is_authenticated else None


def products_for_lines(
    lines: Sequence[SkuQuantity], *, what: str, known: Mapping[str, Product] | None = None
) -> dict[str, Product]:
    """{sku: Product} for the lines, or one InvalidInput naming every bad line (quantity, duplicate or unknown SKU).

    `known`: products the caller already read (by SKU); only the others are queried (none: no query)."""
    if not lines:
        raise InvalidInput(f"The {what} needs at least one line.", fields={"lines": ["At least one line is required."]})
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        if not is_quantity(line.quantity):
            errors[f"lines[{i}].quantity"] = ["Must be a whole number of at least 1."]
        if line.sku in seen:
            errors[f"lines[{i}].sku"] = [f"SKU {line.sku} is also on line {seen[line.sku]}; put it on one line."]
        seen.setdefault(line.sku, i)
    products = {sku: product for sku, product in (known or {}).items() if sku in seen}
    if missing := set(seen) - products.keys():
        products.update({p.sku: p for p in Product.objects.filter(sku__in=missing)})
    for i, line in enumerate(lines):
        if line.sku not in products:
            errors.setdefault(f"lines[{i}].sku", []).append(f"No product with SKU {line.sku!r}.")
    if errors:
        raise InvalidInput(f"The {what} has invalid lines; nothing was written.", fields=errors)
    return products
