from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from violations.models import violation_models


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    tables = [
        {"db_table": table, "name": model._meta.verbose_name_plural, "total": model.objects.count()}
        for table, model in violation_models().items()
    ]
    return render(request, "dashboard/index.html", {"tables": tables})


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
