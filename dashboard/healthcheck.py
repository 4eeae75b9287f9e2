"""`python -m dashboard.healthcheck URL`: exit 0 when `/healthz` answers 200, else 1.

The web container's healthcheck (docker-compose.yml). The slim image has no curl, and
this must not boot Django every few seconds, so it is a stdlib HTTP request. It asks the
way the TLS-terminating proxy in front of production would: with a Host Django accepts
(the first of DJANGO_ALLOWED_HOSTS; any other is answered 400) and `X-Forwarded-Proto:
https` (or SECURE_SSL_REDIRECT answers 301 to a plain-http probe).
"""

import os
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def probe_host(allowed_hosts: str) -> str:
    """A Host header Django will accept, from a DJANGO_ALLOWED_HOSTS value."""
    for entry in allowed_hosts.split(","):
        host = entry.strip().lstrip(".")  # ".example.com" allows example.com too
        if host and host != "*":
            return host
    return "localhost"


def healthy(url: str, allowed_hosts: str, timeout: float = 3.0) -> bool:
    if urllib.parse.urlsplit(url).scheme != "http":
        raise ValueError(f"healthcheck URL must be http://...: {url!r}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, headers={"Host": probe_host(allowed_hosts), "X-Forwarded-Proto": "https"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    ok = healthy(url, os.environ.get("DJANGO_ALLOWED_HOSTS", ""))
    if not ok:
        print(f"unhealthy: {url} did not answer 200", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
