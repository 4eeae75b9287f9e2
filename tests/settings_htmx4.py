"""Test settings serving the dashboard with htmx 4 (tests/test_htmx_versions.py): the page
after the one-argument move docs/frontend.md describes, templates/dashboard/index.html
otherwise as it is."""

from pathlib import Path

from config.settings.test import *  # noqa: F403
from config.settings.test import TEMPLATES

TEMPLATES = [
    TEMPLATES[0]
    | {"DIRS": [Path(__file__).resolve().parent / "templates_htmx4", *TEMPLATES[0]["DIRS"]]}
]
