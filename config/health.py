"""Liveness (/healthz: the process answers) and readiness (/readyz: database and broker reachable)."""

from django.conf import settings
from django.http import HttpResponseRedirect, JsonResponse
from health_check.checks import Database
from health_check.views import HealthCheckView


def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def home(request) -> HttpResponseRedirect:
    return HttpResponseRedirect("/admin/")


class ReadyView(HealthCheckView):
    """JSON by default. The broker is checked only when one is configured (eager mode has none)."""

    def get_checks(self):
        from health_check.contrib.redis import Redis

        self.checks = [Database]
        if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
            from redis.asyncio import Redis as RedisClient

            url = settings.CELERY_BROKER_URL
            self.checks.append((Redis, {"client_factory": lambda: RedisClient.from_url(url, socket_timeout=2)}))
        return super().get_checks()

    def render_to_response_json(self, status):
        response = super().render_to_response_json(status)
        if response.status_code == 500:
            response.status_code = 503
        return response

    async def get(self, request, *args, **kwargs):
        request.GET = request.GET.copy()
        request.GET.setdefault("format", "json")
        return await super().get(request, *args, **kwargs)
