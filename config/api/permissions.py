from django.db.models import QuerySet
from rest_framework.permissions import DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Django model permissions, with `view` required for reads (DRF's default lets any user read).

    A view may name the permissions of an extra action in `action_permissions`
    ({"cancel": ["orders.cancel_salesorder"]}); other requests use the permission for the HTTP method.
    A method the view does not support only needs an authenticated user, so it answers 405, not 403.

    The model whose permissions apply is that of the view's declared `queryset` (every API view declares one;
    its get_queryset only adds joins and prefetches, which DRF would build on every request just to read the
    model). tests/test_api_plumbing.py checks that the two agree on every view.
    """

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def _queryset(self, view) -> QuerySet:
        declared = getattr(view, "queryset", None)
        return declared if declared is not None else super()._queryset(view)

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        method = request.method.lower()
        if method not in view.http_method_names or not hasattr(view, method):
            return True
        action_permissions = getattr(view, "action_permissions", {})
        action = getattr(view, "action", None)
        if action in action_permissions:
            return user.has_perms(action_permissions[action])
        return super().has_permission(request, view)
