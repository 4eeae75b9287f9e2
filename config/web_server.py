"""Which ASGI server serves `config.asgi:application`: `WEB_SERVER` = daphne (default) | uvicorn.

Daphne is the default. Uvicorn is the option for the WebSocket tier: in `make bench` its
web process spent half to two thirds of Daphne's CPU per delivered frame, and an event
reached the last of 1,000 sockets in half the time (README: Choosing the web server).
Both run the same application; uvicorn is started with Daphne's behaviour wherever the
dashboard depends on it:

- `--ws websockets-sansio`: the `websockets` library's protocol, named rather than "auto"
  so that a missing `websockets` fails at start instead of serving without WebSockets.
- `--ws-per-message-deflate false`: no compression, as in Daphne. Browsers always offer
  it, and uvicorn would accept: a zlib context per socket (memory) and each broadcast
  frame compressed once per socket (CPU), where the hub encodes it once for all of them.
- `--ws-max-size 1048576`: a client message of over 1 MiB fails the socket (1009) before
  the application sees it, as in Daphne; uvicorn's own limit is 16 MiB.
- `--ws-ping-interval 20 --ws-ping-timeout 30`: Daphne's keepalive, which keeps a quiet
  dashboard's socket open through a proxy's idle timeout (docs/forking.md).
- `--no-proxy-headers`, and Daphne without `--proxy-headers`: neither server reads
  X-Forwarded-For itself. Daphne's flag would believe it from any peer, and login
  throttling counts failures per address (SECURITY.md). The application does it instead
  (config/asgi.py, uvicorn's ProxyHeadersMiddleware), under both servers alike: only from
  a peer listed in FORWARDED_ALLOW_IPS, which is empty unless set. Behind a reverse proxy
  on the same host, `--proxy-headers` here is short for FORWARDED_ALLOW_IPS=127.0.0.1
  (when it is not set already): the proxy's X-Forwarded-For gives the client's address,
  its X-Forwarded-Proto the scheme.
- `--lifespan off`: Channels' router has no application for the lifespan protocol.

Its event loop is uvloop, which uvicorn picks by itself where it is installed
(pyproject.toml: everywhere but Windows): about a fifth less CPU per frame in the bench.

`python -m config.web_server --host 0.0.0.0 --port 8000 [--proxy-headers]` replaces
itself (exec, same pid) with the chosen server: the Docker image's command, and the one to
use in a deployment. `make run`, the tests and the bench start the same argv through
`server_argv()`.
"""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

ENV_VARIABLE = "WEB_SERVER"
WEB_SERVERS = ("daphne", "uvicorn")
DEFAULT_WEB_SERVER = "daphne"
# Read by config.settings (FORWARDED_ALLOW_IPS); `--proxy-headers` defaults it to a proxy here.
PROXIES_VARIABLE = "FORWARDED_ALLOW_IPS"
LOCAL_PROXY = "127.0.0.1"
APPLICATION = "config.asgi:application"

# Daphne's defaults, which uvicorn is given explicitly (see the module docstring).
MAX_MESSAGE_BYTES = 1024 * 1024
PING_INTERVAL_S = 20
PING_TIMEOUT_S = 30


class UnknownWebServer(ValueError):
    """WEB_SERVER names no server we support; the message says which ones do."""


def chosen_web_server(environ: Mapping[str, str]) -> str:
    """The server `environ` asks for: WEB_SERVER, or Daphne when it is unset or empty."""
    value = environ.get(ENV_VARIABLE, "")
    name = value.strip().lower() or DEFAULT_WEB_SERVER
    if name not in WEB_SERVERS:
        raise UnknownWebServer(
            f"{ENV_VARIABLE}={value!r} is not a web server this project runs: "
            f"use {' or '.join(WEB_SERVERS)} (default {DEFAULT_WEB_SERVER})."
        )
    return name


def server_argv(
    server: str,
    host: str,
    port: int,
    application: str = APPLICATION,
) -> list[str]:
    """Arguments for `python` that serve `application` on host:port with `server`, without
    the server's own proxy-header handling (the application's applies to both)."""
    if server == "daphne":
        return ["-m", "daphne", "-b", host, "-p", str(port), application]
    if server == "uvicorn":
        return [
            *("-m", "uvicorn", "--host", host, "--port", str(port)),
            *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false"),
            *("--ws-max-size", str(MAX_MESSAGE_BYTES)),
            *("--ws-ping-interval", str(PING_INTERVAL_S)),
            *("--ws-ping-timeout", str(PING_TIMEOUT_S)),
            "--no-proxy-headers",
            *("--lifespan", "off"),
            application,
        ]
    raise UnknownWebServer(f"no web server named {server!r}: {', '.join(WEB_SERVERS)}")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m config.web_server",
        description=f"Serve {APPLICATION} with the server WEB_SERVER names "
        f"({' or '.join(WEB_SERVERS)}; default {DEFAULT_WEB_SERVER}).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="behind a reverse proxy on this host: believe its X-Forwarded-For "
        f"(FORWARDED_ALLOW_IPS={LOCAL_PROXY} unless set)",
    )
    args = parser.parse_args(argv)
    try:
        server = chosen_web_server(environ)
    except UnknownWebServer as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    child_env = dict(environ)
    if args.proxy_headers and not child_env.get(PROXIES_VARIABLE, "").strip():
        child_env[PROXIES_VARIABLE] = LOCAL_PROXY
    # exec, not a child: the server keeps this pid, so a container's stop signal reaches it.
    argv = server_argv(server, args.host, args.port)
    os.execve(sys.executable, [sys.executable, *argv], child_env)  # noqa: S606


if __name__ == "__main__":
    main()
