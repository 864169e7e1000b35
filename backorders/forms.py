"""Admin forms for the backorder workflows: input only, the rules live in the services."""

from django import forms
from django.contrib.admin.widgets import AdminDateWidget

from .services.priority import PRIORITY_MAX, PRIORITY_MIN


class PinPriorityForm(forms.Form):
    priority = forms.IntegerField(
        min_value=PRIORITY_MIN,
        max_value=PRIORITY_MAX,
        help_text="Higher is filled first when stock arrives, ahead of the fill strategy. 0 removes the pin.",
    )


class CancelOrdersForm(forms.Form):
    ALL = "all"
    WAITING = "waiting"

    scope = forms.ChoiceField(
        choices=[
            (ALL, "Everything not yet shipped (allocated and backordered units)"),
            (WAITING, "Only the backordered units (ship what is allocated)"),
        ],
        initial=ALL,
        widget=forms.RadioSelect,
        label="Cancel",
    )


class SetEtaForm(forms.Form):
    eta = forms.DateField(
        label="New ETA",
        required=False,
        widget=AdminDateWidget,
        help_text="The date the line is now expected to ship. It wins over the computed ETA until cleared.",
    )
    clear = forms.BooleanField(
        label="Clear the manual ETA instead (back to the computed one)",
        required=False,
    )
    reason = forms.CharField(max_length=255, help_text="Why; kept in the ETA history, e.g. 'Supplier confirmed'.")

    def clean(self):
        data = super().clean()
        if not data.get("clear") and not data.get("eta") and "eta" not in self.errors:
            self.add_error("eta", "Give the new ETA, or tick 'clear'.")
        if data.get("clear") and data.get("eta"):
            self.add_error("eta", "Give a new ETA or clear it, not both.")
        return data
