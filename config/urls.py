from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.templatetags.static import static as static_url
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from config.accounts import account_urls
from dashboard.views import healthz

urlpatterns = [
    path("", include("dashboard.urls")),
    path("accounts/", include(account_urls())),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's); lazy: the
    # hashed name exists only once collectstatic has run.
    path("favicon.ico", RedirectView.as_view(url=lazy(static_url, str)("favicon.svg"))),
]

# Camera snapshots under MEDIA_URL, in development only (production: the web server).
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
