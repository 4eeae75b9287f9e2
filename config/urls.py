from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from config.accounts import account_urls
from dashboard.views import healthz

urlpatterns = [
    path("", include("dashboard.urls")),
    path("accounts/", include(account_urls())),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

# Camera snapshots under MEDIA_URL, in development only (production: the web server).
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
