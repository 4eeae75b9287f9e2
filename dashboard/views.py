from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dashboard import clock, rendering
from dashboard.access import VIEW_PERMISSION
from violations import event_log


# Not logged in: to the login page. Logged in without the permission: 403, saying why
# (sending a logged-in user back to the login page would loop and explain nothing).
@login_required
@permission_required(VIEW_PERMISSION, raise_exception=True)
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    position = event_log.head_seq()  # read first: the parts are at least that new
    context = rendering.page_context(position=position, listener=event_log.listener_status())
    # The page ages "last event" by the server's clock and says which zone "Today" is.
    context |= {
        "server_time": clock.now(),
        "time_zone": timezone.get_default_timezone_name(),
        "stale_after_ms": round(settings.DASHBOARD_STALE_SECONDS * 1000),
    }
    return render(request, "dashboard/index.html", context)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and compose: 200 when the database answers, else 503."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok"})
