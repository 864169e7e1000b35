"""The back office's admin site: Django's admin with the backorder dashboard as its index.

Installed in place of "django.contrib.admin" (INSTALLED_APPS names BackOfficeAdminConfig), so every
`admin.site.register(...)` and `@admin.register` lands here. This module is imported while the app
registry loads, so it imports no models; the dashboard selectors are imported when the index is served.
"""

import contextlib

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.template.response import TemplateResponse
from simple_history.models import HistoricalRecords


class BackOfficeAdminSite(admin.AdminSite):
    site_header = "Backorder back office"
    site_title = "Back office"
    index_title = "Today in the back office"
    index_template = "admin/dashboard_index.html"

    def admin_view(self, view, cacheable=False):
        """Every admin view records who made each change in the change history (django-simple-history
        reads the request from HistoricalRecords.context, as its middleware would set it)."""
        inner = super().admin_view(view, cacheable)

        def with_history_user(request, *args, **kwargs):
            HistoricalRecords.context.request = request
            try:
                return inner(request, *args, **kwargs)
            finally:
                with contextlib.suppress(AttributeError):
                    del HistoricalRecords.context.request

        with_history_user.__dict__.update(inner.__dict__)
        with_history_user.__wrapped__ = inner
        return with_history_user

    def index(self, request, extra_context=None) -> TemplateResponse:
        from .dashboard import dashboard_cached

        board = dashboard_cached(request.user, refresh="refresh" in request.GET)
        return super().index(request, {"dashboard": board, **(extra_context or {})})


class BackOfficeAdminConfig(AdminConfig):
    default_site = "backorders.admin_site.BackOfficeAdminSite"
