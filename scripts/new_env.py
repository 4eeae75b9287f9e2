"""Write `.env` for `docker compose up` from `.env.example`, with a fresh random
DJANGO_SECRET_KEY in place of the example's placeholder, so no two stacks share a key.

    python3 scripts/new_env.py        # or: make env

Refuses to overwrite an existing `.env` (its key signs the sessions of everyone logged in).
Generating a project from the template runs it too. Standard library only: it runs
before any virtualenv exists, and on the template tool's Python.
"""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

KEY_LINE = re.compile(r"^DJANGO_SECRET_KEY=.*$", re.MULTILINE)


def env_text(example: str) -> str:
    """`example` (the text of .env.example) with a newly generated secret key."""
    key = secrets.token_urlsafe(50)
    text, count = KEY_LINE.subn(lambda _: f"DJANGO_SECRET_KEY={key}", example)
    if count != 1:
        raise ValueError(".env.example must have exactly one DJANGO_SECRET_KEY= line")
    return text


def write_env(project: Path) -> Path:
    """Write `project`/.env from `project`/.env.example; FileExistsError if there is one."""
    target = project / ".env"
    text = env_text((project / ".env.example").read_text(encoding="utf-8"))
    with target.open("x", encoding="utf-8") as env_file:  # "x": never overwrite
        env_file.write(text)
    target.chmod(0o600)  # the key and the database password: the owner's only
    return target


def main() -> int:
    project = Path(__file__).resolve().parent.parent
    try:
        target = write_env(project)
    except FileExistsError:
        print(f"{project / '.env'} exists already; left as it is.", file=sys.stderr)
        return 1
    print(f"Wrote {target} with a new DJANGO_SECRET_KEY.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
