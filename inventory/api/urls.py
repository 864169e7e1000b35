from rest_framework.routers import SimpleRouter

from .views import ProductViewSet, WarehouseViewSet

router = SimpleRouter()
router.register("warehouses", WarehouseViewSet, basename="warehouse")
router.register("products", ProductViewSet, basename="product")

urlpatterns = router.urls
