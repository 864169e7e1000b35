"""Paging for the changelists of tables with millions of rows (orders, lines, backorders, compliance).

Django's changelist numbers its pages with a SELECT COUNT(*) of every matching row; on a million orders that
count costs more than the page itself, and it runs on every request. CappedCountPaginator counts exactly up to
`exact_limit` rows (a COUNT over a LIMIT: it stops after that many rows, which the filter's index finds quickly)
and shows that number. Above the limit the count is not exact, and the changelist says so
(templates/admin/pagination.html, actions.html, search_form.html):

- "about 1,000,000 sales orders" when PostgreSQL's planner can tell (EXPLAIN, nothing read: pg_class.reltuples
  for the whole table, the column statistics of ANALYZE for conditions on the table's own columns);
- "more than 10,000 backorders" when it would only guess (through a join, a subquery, a LIKE pattern: off by a
  factor of 30 and more on these tables).

Pages past the estimated last one can still be opened (empty past the real end). Deep pages find their ids
first on the table alone, then fetch those rows with their joins (OFFSET would join every skipped row).

This module sits in the orders app so that the orders and backorders admins can both use it (STYLE.md layering).
"""

import json
import math
from functools import cached_property

from django.contrib import admin
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connections
from django.http import HttpRequest
from django.utils.formats import number_format


def rounded_estimate(rows: float) -> int:
    """An estimate to two significant digits: the planner's figure is no more precise than that."""
    if rows < 100:
        return round(rows)
    magnitude = 10 ** (int(math.log10(rows)) - 1)
    return int(round(rows / magnitude) * magnitude)


class CappedCountPaginator(Paginator):
    """Exact counts up to `exact_limit` rows; above, the planner's estimate or only "more than `exact_limit`"."""

    exact_limit = 10_000
    # From this offset on, a page's ids are found on the table alone before its rows are fetched with their joins.
    deep_offset = 1_000

    approximate = False  # the count is not exact
    lower_bound = False  # the count is only known to exceed exact_limit

    @cached_property
    def count(self) -> int:
        # Only the ids: no ordering, no select_related joins, no annotations (the changelist's per-row subqueries).
        ids = self.object_list.order_by().values("pk")
        counted = ids[: self.exact_limit + 1].count()
        if counted <= self.exact_limit:
            return counted
        self.approximate = True
        estimate = self.estimate(ids)
        if estimate is None:
            self.lower_bound = True
            return self.exact_limit + 1
        return max(self.exact_limit + 1, estimate)

    def estimate(self, ids) -> int | None:
        """The planner's row estimate for the filtered query (one EXPLAIN: nothing is read), where it is founded
        on statistics: conditions on the table's own columns only (an equality, a range, IN a list of values)."""
        if connections[ids.db].vendor != "postgresql":
            return None
        sql, _ = ids.query.sql_with_params()
        if " JOIN " in sql or sql.count("SELECT") > 1 or " LIKE " in sql:
            return None
        plan = json.loads(ids.explain(format="json"))
        return rounded_estimate(plan[0]["Plan"]["Plan Rows"])

    def validate_number(self, number):
        if not self.approximate:
            return super().validate_number(number)
        # The last page is not known: a page past the estimate may still have rows (it is empty past the real end).
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.approximate and top + self.orphans >= self.count:
            top = self.count
        if bottom < self.deep_offset:
            return self._get_page(self.object_list[bottom:top], number, self)
        ids = list(self.object_list.values_list("pk", flat=True)[bottom:top])
        return self._get_page(self.object_list.filter(pk__in=ids), number, self)


class BigTableAdminMixin:
    """For a changelist over a big table: capped counts, no unfiltered total, labels that say so."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        paginator = getattr(context.get("cl"), "paginator", None)
        if getattr(paginator, "approximate", False):
            # What the actions bar says once "Select all" is clicked (Django's text gives the bare number).
            if paginator.lower_bound:
                context["selection_note_all"] = f"All of more than {number_format(paginator.exact_limit)} selected"
            else:
                context["selection_note_all"] = f"All of about {number_format(paginator.count)} selected"
        return response
