from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import BackorderViewSet, OrderViewSet, PolicyView, PurchaseOrderViewSet, StockAdjustmentView

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("backorders", BackorderViewSet, basename="backorder")
router.register("purchase-orders", PurchaseOrderViewSet, basename="purchase-order")

urlpatterns = [
    *router.urls,
    path("stock-adjustments/", StockAdjustmentView.as_view(), name="stock-adjustment-create"),
    path("policy/", PolicyView.as_view(), name="policy"),
]
