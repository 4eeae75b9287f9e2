"""Build the cookiecutter template folder from the project at the repository root.

The repository root is the runnable project and the template at once, so there is no
second copy that can drift. cookiecutter (>= 2.4) runs this hook in a temporary copy of
the repository before it asks anything; the hook moves the project's files into
`{{cookiecutter.project_slug}}/`, the folder cookiecutter generates from, and leaves
behind the template machinery and whatever git ignores (.venv, caches, local data).

Nothing is rendered with Jinja (`_copy_without_render` is "*"): the Django templates use
`{{ }}` and `{% %}` themselves. post_gen_project.py writes the answers in instead.
Runs on cookiecutter's Python, which may be older than the project's: stdlib only.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import sys
from pathlib import Path, PurePosixPath

TEMPLATE_DIR = "{{cookiecutter.project_slug}}"
# The template machinery: stays behind, never part of a generated project.
MACHINERY = {".git", "hooks", "cookiecutter.json", TEMPLATE_DIR}
# What only the template needs: its own tests, the benchmark and the measurement scripts
# with their reports. By path (fnmatch, folders whole); each must match something.
TEMPLATE_ONLY_PATHS = [
    "tests/test_cookiecutter.py",
    "bench",
    "tests/test_bench_*.py",
    "scripts/measure_*.py",
    "docs/benchmarks.*",
    "docs/channel-layers.md",
]
# Lines only the template needs, by file.
TEMPLATE_ONLY_LINES = {
    "pyproject.toml": re.compile(r'^\s*"cookiecutter[<>=~!].*\n', re.MULTILINE),
    "constraints.txt": re.compile(r"^cookiecutter==.*\n", re.MULTILINE),
}
# Text about the template (how to generate a project, the bench) is wrapped in these:
# HTML comments in Markdown files, `#` comments in the Makefile and pyproject.toml.
TEMPLATE_ONLY_BLOCK = re.compile(
    r"^[ \t]*(<!-- |# )template-only((?: -->)?)\n.*?^[ \t]*\1/template-only\2\n+", re.S | re.M
)
TEMPLATE_ONLY_BLOCK_FILES = ["README.md", "docs/decisions.md", "Makefile", "pyproject.toml"]


class TemplateError(Exception):
    """The repository and this hook disagree: the template needs updating."""


def gitignore_patterns(text: str) -> list[str]:
    """The patterns of a .gitignore (only the simple forms this repository uses)."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise TemplateError(f".gitignore negation {line!r} is not supported by the hook")
        patterns.append(line)
    return patterns


def is_ignored(path: PurePosixPath, is_dir: bool, patterns: list[str]) -> bool:
    """Whether git would ignore `path` (relative to the root) itself, by one of `patterns`."""
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:  # anchored at the root
            if fnmatch.fnmatchcase(path.as_posix(), pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(path.name, pattern):
            return True
    return False


def remove_ignored(root: Path, patterns: list[str], folder: Path | None = None) -> None:
    """Delete what git ignores under `root` (a throwaway copy), top-down."""
    for entry in sorted((folder or root).iterdir()):
        relative = PurePosixPath(entry.relative_to(root).as_posix())
        is_dir = entry.is_dir() and not entry.is_symlink()
        if is_ignored(relative, is_dir, patterns):
            shutil.rmtree(entry) if is_dir else entry.unlink()
        elif is_dir:
            remove_ignored(root, patterns, entry)


def strip_template_only(project: Path) -> None:
    for pattern in TEMPLATE_ONLY_PATHS:
        found = [
            path
            for path in sorted(project.rglob("*"))
            if fnmatch.fnmatchcase(path.relative_to(project).as_posix(), pattern)
        ]
        if not found:
            raise TemplateError(f"{pattern} matches nothing: update TEMPLATE_ONLY_PATHS")
        for path in found:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():  # not inside a folder already removed
                path.unlink()
    for name, line in TEMPLATE_ONLY_LINES.items():
        path = project / name
        text, count = line.subn("", path.read_text(encoding="utf-8"))
        if count != 1:
            raise TemplateError(f"{name}: expected one {line.pattern!r} line, found {count}")
        path.write_text(text, encoding="utf-8")
    for name in TEMPLATE_ONLY_BLOCK_FILES:
        path = project / name
        text, count = TEMPLATE_ONLY_BLOCK.subn("", path.read_text(encoding="utf-8"))
        if not count:
            raise TemplateError(f"{name} has no template-only block")
        path.write_text(text, encoding="utf-8")


def build_template(repo: Path) -> Path:
    """Move the project in `repo` (a temporary copy) into the template folder; return it."""
    ignore_file = repo / ".gitignore"
    patterns = gitignore_patterns(ignore_file.read_text(encoding="utf-8"))
    project = repo / TEMPLATE_DIR
    project.mkdir()
    for entry in sorted(repo.iterdir()):
        if entry.name not in MACHINERY:
            shutil.move(str(entry), str(project / entry.name))
    remove_ignored(project, patterns)
    strip_template_only(project)
    return project


def main() -> int:
    try:
        build_template(Path.cwd())
    except TemplateError as error:
        print(f"Cannot build the template: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
