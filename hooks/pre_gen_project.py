"""Refuse bad answers before anything is written, saying what is wrong and what is allowed.

cookiecutter renders this file with the answers, then runs it; a non-zero exit stops the
generation and removes the half-made folder. Runs on cookiecutter's Python: stdlib only.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import zoneinfo
from pathlib import Path
from types import ModuleType

# Folder, Python distribution, docker compose project and Redis prefix all accept this.
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
# Short enough that the lines it lands in stay within the line length ruff allows.
SLUG_MAX_LENGTH = 25
# Characters that would mean something in HTML or in a Django template.
NAME_FORBIDDEN = set('{}%<>"\\')
NAME_MAX_LENGTH = 80
# Majors of the official postgres image that the Django versions we allow support.
POSTGRES_VERSIONS = ("15", "16", "17", "18")


def load_contract(repo_dir: str | None = None) -> ModuleType:
    """The project's violations/contract.py, loaded by path: the identifier rule lives there
    once, and the project's other dependencies may be missing from cookiecutter's Python.

    cookiecutter runs a copy of this hook elsewhere; `repo_dir` (its `_repo_dir`) holds the
    project folder that pre_prompt.py made. Loaded from hooks/, it is the repository root.
    """
    candidates = [*Path(repo_dir).glob("*/violations/contract.py")] if repo_dir else []
    candidates.append(Path(__file__).resolve().parent.parent / "violations" / "contract.py")
    path = next(path for path in candidates if path.is_file())
    spec = importlib.util.spec_from_file_location("project_contract", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


def problems(answers: dict) -> list[str]:
    """What is wrong with `answers`, one sentence each; empty when all is well."""
    contract = load_contract(answers.get("_repo_dir"))
    found = []
    name = answers["project_name"]
    if (
        not name.strip()
        or len(name) > NAME_MAX_LENGTH
        or any(c in NAME_FORBIDDEN or c < " " for c in name)
    ):
        found.append(
            f"project_name {name!r} is not allowed: use 1-{NAME_MAX_LENGTH} characters, without "
            '{ } % < > " \\ or control characters (it goes into page titles and templates).'
        )
    slug = answers["project_slug"]
    if not SLUG_PATTERN.fullmatch(slug) or len(slug) > SLUG_MAX_LENGTH:
        found.append(
            f"project_slug {slug!r} is not allowed: use up to {SLUG_MAX_LENGTH} lower-case "
            "letters and "
            "digits, words joined by - or _, starting with a letter (it names the folder, "
            "the Python distribution and the docker compose project)."
        )
    channel = answers["notify_channel"]
    if not contract.is_plain_identifier(channel):
        found.append(
            f"notify_channel {channel!r} is not a valid channel name: it is written into SQL "
            "(the triggers' pg_notify and the listener's LISTEN), so use "
            f"{contract.IDENTIFIER_RULE}."
        )
    time_zone = answers["time_zone"]
    if not _known_time_zone(time_zone):
        found.append(
            f"time_zone {time_zone!r} is not a time zone: use an IANA name such as UTC, "
            "Europe/Berlin or America/New_York."
        )
    version = str(answers["postgres_version"])
    if version not in POSTGRES_VERSIONS:
        found.append(
            f"postgres_version {version!r} is not offered: choose one of "
            f"{', '.join(POSTGRES_VERSIONS)}."
        )
    if not isinstance(answers["with_demo_data"], bool):
        found.append(f"with_demo_data {answers['with_demo_data']!r}: answer yes or no.")
    return found


def _known_time_zone(name: str) -> bool:
    available = zoneinfo.available_timezones()
    if not available:  # no time zone database here (Windows without tzdata): Django checks
        return bool(re.fullmatch(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", name))
    return name in available


def main() -> int:
    # cookiecutter renders this file with Jinja before running it: this is the only tag.
    answers = json.loads(r"""{{ cookiecutter | tojson }}""")
    found = problems(answers)
    for problem in found:
        print(f"Error: {problem}", file=sys.stderr)
    if found:
        print("Nothing was generated. Run cookiecutter again with other values.", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
