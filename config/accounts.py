"""The account pages under /accounts/: log in, log out, change password, and password reset
only where email is configured.

Django's `django.contrib.auth.urls` would serve the reset pages to anyone, unthrottled,
and with no mail set up a reset for a real address ends in a logged traceback. So reset
exists only with EMAIL_URL, and then each client address and each email address may ask
for PASSWORD_RESET_LIMIT_PER_HOUR links an hour (HTTP 429 beyond that). The counts live in
Django's cache: per process with the default local-memory cache.
"""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path

HOUR_S = 60 * 60


def _over_limit(key: str) -> bool:
    """Count one request under `key`; True once this hour's count exceeds the limit."""
    cache.add(key, 0, timeout=HOUR_S)  # the hour starts with the first request
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=HOUR_S)
        count = 1
    return count > settings.PASSWORD_RESET_LIMIT_PER_HOUR


class ThrottledPasswordResetView(auth_views.PasswordResetView):
    """Django's reset form, refusing (429) requests beyond the hourly limits."""

    def post(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        email = request.POST.get("email", "").strip().lower()[:254]
        by_address = _over_limit(f"password-reset:ip:{request.META.get('REMOTE_ADDR', '')}")
        by_email = _over_limit(f"password-reset:email:{email}")
        if by_address or by_email:
            return HttpResponse(
                "Too many password reset requests; try again in an hour.",
                status=429,
                content_type="text/plain",
            )
        return super().post(request, *args, **kwargs)


def account_urls() -> list[URLPattern]:
    """The /accounts/ pages, under the names django.contrib.auth.urls uses."""
    urls = [
        path("login/", auth_views.LoginView.as_view(), name="login"),
        path("logout/", auth_views.LogoutView.as_view(), name="logout"),
        # Both require a login (Django's views are decorated with login_required).
        path(
            "password_change/",
            auth_views.PasswordChangeView.as_view(),
            name="password_change",
        ),
        path(
            "password_change/done/",
            auth_views.PasswordChangeDoneView.as_view(),
            name="password_change_done",
        ),
    ]
    if settings.EMAIL_CONFIGURED:
        urls += [
            path("password_reset/", ThrottledPasswordResetView.as_view(), name="password_reset"),
            path(
                "password_reset/done/",
                auth_views.PasswordResetDoneView.as_view(),
                name="password_reset_done",
            ),
            path(
                "reset/<uidb64>/<token>/",
                auth_views.PasswordResetConfirmView.as_view(),
                name="password_reset_confirm",
            ),
            path(
                "reset/done/",
                auth_views.PasswordResetCompleteView.as_view(),
                name="password_reset_complete",
            ),
        ]
    return urls
