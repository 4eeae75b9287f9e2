"""Deciding what to re-render for a batch of events, and rendering it (once, for everyone)."""

from collections.abc import Iterable
from typing import Any

from django.template.loader import render_to_string

from dashboard import widgets


def tables_to_refresh(events: Iterable[dict[str, Any]], known: Iterable[str]) -> list[str]:
    """The widgets a batch of events touches, in dashboard order."""
    changed = {event.get("table") for event in events}
    return [table for table in known if table in changed]


def inserted_tables(events: Iterable[dict[str, Any]]) -> list[str]:
    """Tables that gained a row in this batch: each plays its sound once."""
    return sorted({event["table"] for event in events if event.get("op") == "INSERT"})


def page_context(tables: list[str] | None = None) -> dict[str, Any]:
    """The dashboard's parts: every widget, or only those of `tables`, with feed and chart."""
    tables = widgets.all_tables() if tables is None else tables
    return {
        "widgets": [widgets.widget(table) for table in tables],
        "feed": widgets.feed(),
        "activity": widgets.activity(),
    }


def render_refresh() -> str:
    """Every part, swapped out-of-band: sent when a socket (re)connects."""
    return render_to_string("dashboard/_updates.html", page_context() | {"inserted": []})


def render_update(events: list[dict[str, Any]]) -> str:
    """Only the parts a batch of events touches, swapped out-of-band."""
    tables = tables_to_refresh(events, widgets.all_tables())
    context = page_context(tables) | {"inserted": inserted_tables(events)}
    return render_to_string("dashboard/_updates.html", context)
