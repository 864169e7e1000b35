"""The customer status page (mounted at /status/ in config/urls.py). Every route starts with the signed token."""

from django.urls import path

from . import views

urlpatterns = [
    path("<str:token>/", views.status_page, name="status-page"),
    path("<str:token>/keep-waiting/", views.keep_waiting, name="status-keep-waiting"),
    path("<str:token>/cancel/", views.cancel_waiting, name="status-cancel"),
    path("<str:token>/cancel-order/", views.cancel_order, name="status-cancel-order"),
    path("<str:token>/substitute/<int:line_id>/<path:sku>/", views.take_substitute, name="status-substitute"),
]
