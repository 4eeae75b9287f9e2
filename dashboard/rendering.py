"""Deciding what to re-render for a batch of events, and rendering it (once, for everyone)."""

import datetime
from collections.abc import Iterable
from typing import Any

from django.template.loader import render_to_string

from dashboard import queries
from violations.contract import Event
from violations.event_log import ListenerStatus


def tables_to_refresh(events: Iterable[Event], known: Iterable[str]) -> list[str]:
    """The widgets a batch of events touches, in dashboard order."""
    changed = {event.table for event in events}
    return [table for table in known if table in changed]


def inserted_tables(events: Iterable[Event]) -> list[str]:
    """Tables that gained a row in this batch: each plays its sound once.

    An INSERT beside a DELETE of the same table in the same transaction (the same `at`,
    the transaction's time) is a row that moved, as a primary-key change is logged, not a
    new violation: no sound for it.
    """
    events = list(events)
    moved = {(e.table, e.at) for e in events if e.op == "DELETE"}
    return sorted({e.table for e in events if e.op == "INSERT" and (e.table, e.at) not in moved})


def page_context(
    tables: list[str] | None = None,
    *,
    position: int | None = None,
    listener: ListenerStatus | None = None,
    with_feed: bool = True,
) -> dict[str, Any]:
    """The dashboard's parts: every widget, or only those of `tables`, with feed and chart.

    `position` is the last event the parts include; the page reports it when it reconnects.
    """
    tables = queries.all_tables() if tables is None else tables
    context = {
        "widgets": [queries.widget(table) for table in tables],
        "activity": queries.activity(),
        "position": position,
        "listener": listener,
    }
    if with_feed:
        context["feed"] = queries.feed()
    return context


def render_refresh(position: int, listener: ListenerStatus | None) -> str:
    """Every part, swapped out-of-band: for a page that cannot be brought up to date."""
    context = page_context(position=position, listener=listener) | {"inserted": []}
    return render_to_string("dashboard/_updates.html", context)


def render_update(
    events: list[Event],
    position: int,
    listener: ListenerStatus | None,
    *,
    every_widget: bool = False,
) -> str:
    """Only the parts a range of events touches (and every widget if the day changed),
    swapped out-of-band."""
    known = queries.all_tables()
    tables = known if every_widget else tables_to_refresh(events, known)
    context = page_context(tables, position=position, listener=listener)
    return render_to_string(
        "dashboard/_updates.html", context | {"inserted": inserted_tables(events)}
    )


def render_status(position: int, listener: ListenerStatus | None) -> str:
    """Nothing to update: the position and the listener's health only."""
    context = {"position": position, "listener": listener, "status_only": True}
    return render_to_string("dashboard/_updates.html", context)


def render_clock(position: int, listener: ListenerStatus | None, *, every_widget: bool) -> str:
    """What the clock moved: the last-hour chart, and every widget's "Today" on a new day."""
    tables = queries.all_tables() if every_widget else []
    context = page_context(tables, position=position, listener=listener, with_feed=False)
    return render_to_string("dashboard/_updates.html", context | {"clock_only": True})


def render_heartbeat(seq: int, at: datetime.datetime) -> str:
    """The dashboard's heartbeat: the page's position and the server's time, nothing else."""
    context = {"seq": seq, "server_time": at}
    return render_to_string("dashboard/_heartbeat.html", context)
