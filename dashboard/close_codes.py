"""How a dashboard WebSocket can end, as close codes a client can act on.

All in 4000-4999, the range RFC 6455 leaves to applications, and the only one (besides
1000) that Daphne lets a server send: Autobahn refuses 1008 or 1009 from application code.
Each echoes the HTTP status of the same meaning, so it reads at a glance in a browser
console. 4500 is the server's own failure: a frame it refused to send (over
dashboard.consumers.MAX_FRAME_BYTES) or a socket's sending task that failed; the socket is
closed rather than left open and silent. static/js/dashboard.js sends the user to the
login page on 4401 and 4403, says so and retries only after a minute on 4409, and
reconnects after anything else.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    BAD_MESSAGE = 4400  # not a message this server understands (never echoed back)
    UNAUTHENTICATED = 4401  # not logged in, or the session logged out
    FORBIDDEN = 4403  # logged in without the dashboard.view_dashboard permission
    # The session or user already holds as many sockets as allowed (dashboard.socket_caps);
    # 409 Conflict: the request conflicts with the account's other open sockets.
    TOO_MANY_SOCKETS = 4409
    MESSAGE_TOO_BIG = 4413  # over dashboard.client_messages.MAX_MESSAGE_BYTES
    TOO_MANY_MESSAGES = 4429  # the client sent more than its allowance
    TOO_SLOW = 4408  # nothing acknowledged for ACK_TIMEOUT with the window full: resume
    SERVER_ERROR = 4500  # the server could not send what this socket needs (logged); reconnect
