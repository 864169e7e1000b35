"""Product and warehouse writes. A change that moves restock dates (lead time, supplier, discontinued,
backorders allowed) re-pegs the ETAs of the product's waiting lines in the same transaction."""

from collections.abc import Mapping

from django.db import transaction

from inventory.models import Product

from .eta import etas_recompute

ETA_FIELDS = {"lead_time_days", "supplier", "discontinued", "backorders_allowed"}


@transaction.atomic
def product_update(*, product: Product, changes: Mapping[str, object]) -> Product:
    """Apply field changes to a product; re-peg its waiting lines when a field that moves ETAs changed."""
    moved = {name for name, value in changes.items() if name in ETA_FIELDS and getattr(product, name) != value}
    for name, value in changes.items():
        setattr(product, name, value)
    product.save(update_fields=[*changes, "updated_at"] if changes else None)
    if moved:
        etas_recompute(product_ids=[product.pk])
    return product
