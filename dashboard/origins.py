"""`ExactOriginValidator`: a WebSocket handshake is accepted only from an allowed origin.

Scheme, host and port must all match (Channels' AllowedHostsOriginValidator compares the
host only: docs/decisions.md), with the rule Django's CSRF check applies to unsafe requests:

- the page's own origin: the handshake's Host (which must be in ALLOWED_HOSTS, so a
  DNS-rebound name is refused) with the scheme it was served on: https when the socket is
  wss (scope scheme, set by the server or by a trusted proxy) or when
  SECURE_PROXY_SSL_HEADER says so, as `request.is_secure()` decides for pages;
- or an origin listed in CSRF_TRUSTED_ORIGINS (`DJANGO_CSRF_TRUSTED_ORIGINS`): exactly, or
  `https://*.example.com` for its subdomains, as Django reads that setting.

Anything else, `Origin: null`, a malformed Origin and a handshake without one are refused
with HTTP 403 before the consumer runs.
"""

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

Scope = dict[str, Any]
SECURE_SCHEMES = {"https", "wss"}


def _header(scope: Scope, name: bytes) -> str | None:
    """The one value of header `name`; None when it is missing, repeated or not latin-1."""
    values = [value for key, value in scope.get("headers", []) if key == name]
    if len(values) != 1:
        return None
    try:
        return values[0].decode("latin1").strip()
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None


def is_secure(scope: Scope) -> bool:
    """Whether the page that opened this socket was served over https."""
    if scope.get("scheme") in SECURE_SCHEMES:
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy_header:
        return False
    meta_name, secure_value = proxy_header
    # HTTP_X_FORWARDED_PROTO -> x-forwarded-proto, as Django maps headers into META.
    header = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin1")
    forwarded = _header(scope, header)
    # The first value, as Django takes it: a proxy may append its own.
    return forwarded is not None and forwarded.split(",")[0].strip() == secure_value


def own_origin(scope: Scope, allowed_hosts: Iterable[str]) -> str | None:
    """`scheme://host[:port]` of the page this socket belongs to, or None when the Host
    header is missing or names a host that is not allowed."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, list(allowed_hosts)):
        return None
    return f"{'https' if is_secure(scope) else 'http'}://{host.lower()}"


def is_trusted_origin(origin: str, trusted: Iterable[str]) -> bool:
    """Whether `origin` is one of `trusted` (CSRF_TRUSTED_ORIGINS' syntax: exact origins,
    or `scheme://*.domain` for the domain's subdomains)."""
    parts = urlsplit(origin)
    for entry in trusted:
        entry = entry.lower()
        if origin == entry:
            return True
        if "://*." in entry:
            scheme, _, pattern = entry.partition("://*")
            if parts.scheme == scheme and is_same_domain(parts.netloc, pattern):
                return True
    return False


def origin_allowed(scope: Scope) -> bool:
    """Whether this handshake's Origin may open a socket (see the module docstring)."""
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return False
    origin = origin.lower()
    parts = urlsplit(origin)
    # An origin is scheme://host[:port] and nothing more.
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        return False
    if origin == own_origin(scope, settings.ALLOWED_HOSTS):
        return True
    return is_trusted_origin(origin, settings.CSRF_TRUSTED_ORIGINS)


class ExactOriginValidator:
    """ASGI middleware for the websocket protocol: refuses (HTTP 403) a handshake whose
    Origin is not allowed, before `application` sees it."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            raise ValueError("ExactOriginValidator only guards WebSocket connections")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
