from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """?page=N, PAGE_SIZE rows a page, as {count, next, previous, results} on every list.

    A page that is not a whole number from 1 to the last page is a 400 naming `page`, like any other bad
    query parameter (DRF answers 404 there, a status no list operation documents).
    """

    invalid_page_message = "Invalid page: {message}."

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list | None:
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound as exc:
            raise ValidationError({self.page_query_param: [str(exc.detail)]}) from exc
