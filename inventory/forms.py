"""Admin forms for inventory. They only collect input: the rules live in the services they feed."""

from django import forms

from .exceptions import DomainError
from .models import Product, Warehouse


def add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Show a service's DomainError on the form: field messages on their fields, the detail on top."""
    placed = False
    for field, messages in error.fields.items():
        if field in form.fields:
            for message in messages:
                form.add_error(field, message)
            placed = True
    if not placed:
        form.add_error(None, error.detail)


class StockAdjustmentForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.order_by("sku"))
    warehouse = forms.ModelChoiceField(queryset=Warehouse.objects.order_by("priority", "code"))
    delta = forms.IntegerField(
        label="Change in units",
        help_text="Signed: +12 when units were received or found, -3 when they were damaged or lost.",
    )
    reason = forms.CharField(
        max_length=255,
        help_text="Why on hand changes, e.g. 'Cycle count', 'Damaged in transit'. Kept in the stock ledger.",
    )
