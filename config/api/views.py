from django.http import Http404
from rest_framework.exceptions import NotFound


class NamedNotFoundMixin:
    """A 404 that names what was looked up: "No product with SKU 'MUG'." instead of "Not found."

    Set `not_found_message` with a `{value!r}` placeholder for the lookup value.
    """

    not_found_message = "Not found: {value!r}."

    def get_object(self):
        lookup = self.lookup_url_kwarg or self.lookup_field
        value = self.kwargs[lookup]
        not_found = NotFound(self.not_found_message.format(value=value))
        if "\x00" in str(value):  # no row holds a NUL, and PostgreSQL refuses one in a query (a 500, not a 404)
            raise not_found
        try:
            return super().get_object()
        except Http404:
            raise not_found from None
