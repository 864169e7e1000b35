"""Product and warehouse writes. A change that moves restock dates (lead time, supplier, discontinued,
backorders allowed) re-pegs the ETAs of the product's waiting lines in the same transaction."""

from collections.abc import Mapping

from django.db import transaction

from inventory.models import Product

from .eta import etas_recompute

ETA_FIELDS = {"lead_time_days", "supplier", "discontinued", "backorders_allowed"}


@transaction.atomic
def product_update(*, product: Product, changes: Mapping[str, object]) -> Product:
    """Apply field changes to a product; re-peg its waiting lines when a field that moves ETAs changed.

    Compares against the stored row, so callers may pass an instance already carrying the new values.
    """
    stored = (
        Product.objects.filter(pk=product.pk)
        .values("lead_time_days", "supplier", "discontinued", "backorders_allowed")
        .get()
    )
    for name, value in changes.items():
        setattr(product, name, value)
    product.save(update_fields=[*changes, "updated_at"] if changes else None)
    if any(stored[name] != getattr(product, "supplier_id" if name == "supplier" else name) for name in ETA_FIELDS):
        etas_recompute(product_ids=[product.pk])
    return product
