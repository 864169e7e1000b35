from django.http import Http404
from rest_framework.exceptions import NotFound


class NamedNotFoundMixin:
    """A 404 that names what was looked up: "No product with SKU 'MUG'." instead of "Not found."

    Set `not_found_message` with a `{value!r}` placeholder for the lookup value.
    """

    not_found_message = "Not found: {value!r}."

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            lookup = self.lookup_url_kwarg or self.lookup_field
            raise NotFound(self.not_found_message.format(value=self.kwargs[lookup])) from None
