"""Liveness: what a socket is sent when it has been sent nothing for a while.

A quiet stream and a dead one look the same to a client until something arrives. One timer
per process ticks every half interval (the ticks are numbered); at each tick, a socket
sent nothing since two ticks ago is sent a heartbeat. So no socket goes more than one
interval without a frame, a busy socket is sent none, and a socket that just opened gets
its first after one to two ticks. The JSON feed's heartbeat is documented in the README:

    {"type": "heartbeat", "seq": <the last seq this socket was sent>, "at": "<server time>"}
"""

import datetime

from violations.contract import heartbeat_frame

# Ticks of the timer per heartbeat interval: silence is at most this many ticks long.
TICKS_PER_HEARTBEAT = 2


def tick_seconds(interval: float) -> float:
    """How often the process's heartbeat timer ticks for a heartbeat every `interval`."""
    return interval / TICKS_PER_HEARTBEAT


def heartbeat_due(last_sent_tick: int, tick: int) -> bool:
    """At tick number `tick`, is a socket last sent a frame at `last_sent_tick` due one?

    Tick numbers, not times: a frame sent a moment after a tick must not push the next
    heartbeat a whole interval further on by a rounding error.
    """
    return tick - last_sent_tick >= TICKS_PER_HEARTBEAT


def heartbeat_message(seq: int, at: datetime.datetime) -> str:
    """The feed's heartbeat: the last `seq` the socket was sent, and the server's time."""
    return heartbeat_frame(seq, at.isoformat())
