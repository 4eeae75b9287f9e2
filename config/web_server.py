"""Which ASGI server serves `config.asgi:application`: `WEB_SERVER` = daphne (default) |
uvicorn | granian, in `WEB_CONCURRENCY` processes on one port (default 1).

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

Granian (a Rust HTTP server) runs the application as ASGI without lifespan (`asginl`),
on uvloop too (`--loop auto`), WebSockets on, with its access log as the others have one.
It has no options for the rest: it never reads X-Forwarded-For (the application does),
never negotiates permessage-deflate, sends no keepalive pings (the feed's own heartbeat
keeps a quiet socket busy) and lets messages of up to 64 MiB through, so an oversized
message is the application's to refuse (4413). `--backpressure` is raised from
backlog/workers (1,024 for one worker): it caps the connections a worker holds open, and
each dashboard is one; Daphne and uvicorn have no such cap.

`WEB_CONCURRENCY` > 1 runs that many web processes on the one port: uvicorn's and
granian's own `--workers` (a supervisor that shares the listening socket and restarts
nothing by itself). Daphne has no workers option, and is refused (docs/decisions.md).

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
WEB_SERVERS = ("daphne", "uvicorn", "granian")
DEFAULT_WEB_SERVER = "daphne"
CONCURRENCY_VARIABLE = "WEB_CONCURRENCY"
MULTI_PROCESS_SERVERS = ("uvicorn", "granian")
SERVER_NAMES = f"{', '.join(WEB_SERVERS[:-1])} or {WEB_SERVERS[-1]}"  # for messages
# Read by config.settings (FORWARDED_ALLOW_IPS); `--proxy-headers` defaults it to a proxy here.
PROXIES_VARIABLE = "FORWARDED_ALLOW_IPS"
LOCAL_PROXY = "127.0.0.1"
APPLICATION = "config.asgi:application"

# Daphne's defaults, which uvicorn is given explicitly (see the module docstring).
MAX_MESSAGE_BYTES = 1024 * 1024
PING_INTERVAL_S = 20
PING_TIMEOUT_S = 30
# Granian's cap on the connections one worker holds open; high enough never to be the limit.
GRANIAN_BACKPRESSURE = 65536


class UnknownWebServer(ValueError):
    """WEB_SERVER names no server we support; the message says which ones do."""


def chosen_web_server(environ: Mapping[str, str]) -> str:
    """The server `environ` asks for: WEB_SERVER, or Daphne when it is unset or empty."""
    value = environ.get(ENV_VARIABLE, "")
    name = value.strip().lower() or DEFAULT_WEB_SERVER
    if name not in WEB_SERVERS:
        raise UnknownWebServer(
            f"{ENV_VARIABLE}={value!r} is not a web server this project runs: "
            f"use {SERVER_NAMES} (default {DEFAULT_WEB_SERVER})."
        )
    return name


def chosen_concurrency(environ: Mapping[str, str], server: str) -> int:
    """How many web processes `environ` asks for (WEB_CONCURRENCY, default 1), if `server`
    can run that many on one port."""
    value = environ.get(CONCURRENCY_VARIABLE, "")
    text = value.strip() or "1"
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise UnknownWebServer(
            f"{CONCURRENCY_VARIABLE}={value!r} is not a number of web processes (1 or more)."
        )
    workers = int(text)
    if workers > 1 and server not in MULTI_PROCESS_SERVERS:
        raise UnknownWebServer(
            f"{CONCURRENCY_VARIABLE}={workers} needs a server with workers: "
            f"WEB_SERVER={' or '.join(MULTI_PROCESS_SERVERS)}; {server} runs one process."
        )
    return workers


def server_argv(
    server: str,
    host: str,
    port: int,
    application: str = APPLICATION,
    *,
    workers: int = 1,
) -> list[str]:
    """Arguments for `python` that serve `application` on host:port with `server` in
    `workers` processes, without the server's own proxy-header handling (the application's
    applies to all)."""
    if workers > 1 and server not in MULTI_PROCESS_SERVERS:
        raise UnknownWebServer(f"{server} runs one process, not {workers}")
    if server == "daphne":
        return ["-m", "daphne", "-b", host, "-p", str(port), application]
    if server == "uvicorn":
        return [
            *("-m", "uvicorn", "--host", host, "--port", str(port)),
            *(("--workers", str(workers)) if workers > 1 else ()),
            *("--ws", "websockets-sansio", "--ws-per-message-deflate", "false"),
            *("--ws-max-size", str(MAX_MESSAGE_BYTES)),
            *("--ws-ping-interval", str(PING_INTERVAL_S)),
            *("--ws-ping-timeout", str(PING_TIMEOUT_S)),
            "--no-proxy-headers",
            *("--lifespan", "off"),
            application,
        ]
    if server == "granian":
        return [
            *("-m", "granian", "--interface", "asginl", "--host", host, "--port", str(port)),
            *("--workers", str(workers), "--ws", "--loop", "auto"),
            *("--backpressure", str(GRANIAN_BACKPRESSURE), "--access-log"),
            application,
        ]
    raise UnknownWebServer(f"no web server named {server!r}: {', '.join(WEB_SERVERS)}")


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m config.web_server",
        description=f"Serve {APPLICATION} with the server WEB_SERVER names "
        f"({SERVER_NAMES}; default {DEFAULT_WEB_SERVER}), in WEB_CONCURRENCY "
        "processes (default 1).",
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
        workers = chosen_concurrency(environ, server)
    except UnknownWebServer as error:
        parser.exit(2, f"{parser.prog}: {error}\n")
    child_env = dict(environ)
    if args.proxy_headers and not child_env.get(PROXIES_VARIABLE, "").strip():
        child_env[PROXIES_VARIABLE] = LOCAL_PROXY
    # exec, not a child: the server keeps this pid, so a container's stop signal reaches it.
    argv = server_argv(server, args.host, args.port, workers=workers)
    os.execve(sys.executable, [sys.executable, *argv], child_env)  # noqa: S606


if __name__ == "__main__":
    main()
