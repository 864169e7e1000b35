from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import OrderViewSet, StockAdjustmentView

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    *router.urls,
    path("stock-adjustments/", StockAdjustmentView.as_view(), name="stock-adjustment-create"),
]
