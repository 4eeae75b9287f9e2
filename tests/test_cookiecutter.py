"""The repository as a cookiecutter template: generated projects are clean and work.

Generation starts from a copy of the repository as a clone has it (git's tracked and
unignored files), like `cookiecutter gh:...` does. A generated project with a chosen
channel then runs its own trigger and pipeline tests, and its triggers NOTIFY that channel.
This file is template machinery: generated projects do not get it.
"""

import ast
import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from devstack.postgres import psql_binary
from tests.conftest import empty_database
from tests.processes import PROJECT_ROOT
from violations import contract
from violations.contract import is_plain_identifier

HOOKS = PROJECT_ROOT / "hooks"
MACHINERY = {"cookiecutter.json", "tests/test_cookiecutter.py"}
# What a generated project must not mention once the template-only files are gone.
TEMPLATE_ONLY_WORDS = re.compile(
    r"make bench|python -m bench|bench/|docs/benchmarks|channel-layers|scripts/measure_"
)
CUSTOM = {
    "project_name": "Line 3 forklift watch",
    "project_slug": "forklift-watch",
    "notify_channel": "forklift_events",
    "time_zone": "Europe/Berlin",
    "postgres_version": "18",
    "with_demo_data": "no",
}
# Variables the test session set for itself; a generated project's suite sets its own.
SESSION_ONLY_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_STATIC_ROOT",
    "CHANNEL_LAYER_PREFIX",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
}


def load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"hook_{name}", HOOKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_prompt = load_hook("pre_prompt")
pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")


def clone_files() -> list[str]:
    """The repository's files as a fresh clone would have them (committed or about to be)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (PROJECT_ROOT / name).exists())


def project_files(project: Path) -> list[str]:
    return sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())


def template_only(name: str) -> bool:
    """Whether the file `name` is one pre_prompt.TEMPLATE_ONLY_PATHS keeps out of projects."""
    return any(
        fnmatch.fnmatchcase(name, pattern) or name.startswith(f"{pattern}/")
        for pattern in pre_prompt.TEMPLATE_ONLY_PATHS
    )


# --- The hooks' rules, without generating anything --------------------------------------------


def test_the_hooks_channel_rule_is_the_projects_contract():
    hooks_contract = pre_gen.load_contract()
    assert hooks_contract.IDENTIFIER_PATTERN.pattern == contract.IDENTIFIER_PATTERN.pattern
    assert hooks_contract.IDENTIFIER_RULE == contract.IDENTIFIER_RULE


def test_every_default_that_names_something_in_sql_is_a_plain_identifier():
    """The walk of tests/test_sql_boundaries.py, over what the template offers."""
    options = json.loads((PROJECT_ROOT / "cookiecutter.json").read_text())
    sql_names = {k: v for k, v in options.items() if "channel" in k or "table" in k}
    assert sql_names == {"notify_channel": "violations_channel"}
    assert all(is_plain_identifier(name) for name in sql_names.values())


def test_the_defaults_are_the_root_projects_own_values():
    options = json.loads((PROJECT_ROOT / "cookiecutter.json").read_text())
    source = post_gen.SOURCE
    assert options["project_name"] == source["project_name"]
    assert options["notify_channel"] == source["notify_channel"]
    assert options["time_zone"] == source["time_zone"]
    assert options["postgres_version"][0] == source["postgres_version"]
    assert set(options["postgres_version"]) == set(pre_gen.POSTGRES_VERSIONS)
    assert (
        f"image: postgres:{source['postgres_version']}\n"
        in (PROJECT_ROOT / "docker-compose.yml").read_text()
    )


GOOD = {
    "project_name": "Safety dashboard",
    "project_slug": "safety-dashboard",
    "notify_channel": "violations_channel",
    "time_zone": "UTC",
    "postgres_version": "17",
    "with_demo_data": True,
}


def test_good_answers_pass():
    assert pre_gen.problems(GOOD) == []
    assert pre_gen.problems(GOOD | {k: v for k, v in CUSTOM.items() if k != "with_demo_data"}) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("notify_channel", "x; drop table", "is not a valid channel name: it is written into SQL"),
        ("notify_channel", "Violations", "not a valid channel name"),
        ("notify_channel", "1abc", "not a valid channel name"),
        ("notify_channel", "a" * 64, "not a valid channel name"),
        ("project_slug", "My Project", "project_slug 'My Project' is not allowed"),
        ("project_slug", "-x", "project_slug '-x' is not allowed"),
        ("project_name", "", "project_name '' is not allowed"),
        ("project_name", "{{ 7*7 }}", "is not allowed"),
        ("project_name", "<script>", "is not allowed"),
        ("time_zone", "Mars/Olympus", "time_zone 'Mars/Olympus' is not a time zone"),
        ("time_zone", "../../etc/passwd", "is not a time zone"),
        ("postgres_version", "9", "postgres_version '9' is not offered"),
        ("with_demo_data", "maybe", "answer yes or no"),
    ],
)
def test_bad_answers_are_named_with_what_is_allowed(field, value, message):
    (problem,) = pre_gen.problems(GOOD | {field: value})
    assert message in problem


def test_gitignore_rules():
    patterns = pre_prompt.gitignore_patterns((PROJECT_ROOT / ".gitignore").read_text())
    ignored = pre_prompt.is_ignored
    path = pre_prompt.PurePosixPath
    assert ignored(path(".venv"), True, patterns)
    assert ignored(path("violations/__pycache__"), True, patterns)
    assert ignored(path("config/settings/base.cpython-311.pyc"), False, patterns)
    assert ignored(path(".env"), False, patterns)
    assert not ignored(path(".env.example"), False, patterns)
    assert not ignored(path("violations/migrations"), True, patterns)


def test_dropping_trigger_hashes_leaves_valid_python_with_none_left():
    migration = (PROJECT_ROOT / "violations/migrations/0001_initial.py").read_text()
    renamed = migration.replace("violations_channel", "forklift_events")
    result = post_gen.drop_trigger_hashes(renamed, "forklift_events")
    compile(result, "0001_initial.py", "exec")
    assert migration.count('hash="') == 3
    assert 'hash="' not in result
    assert post_gen.drop_trigger_hashes(renamed, "other_channel") == renamed


def test_removing_a_make_target():
    makefile = (
        ".PHONY: run demo test\n\nrun:\n\techo run\n\n"
        "demo: install  ## x\n\techo demo\n\ntest:\n\techo t\n"
    )
    assert post_gen.remove_make_target(makefile, "demo") == (
        ".PHONY: run test\n\nrun:\n\techo run\n\ntest:\n\techo t\n"
    )


# --- Generating projects ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """The repository as `git clone` would give it to cookiecutter."""
    repo = tmp_path_factory.mktemp("template") / "safety-dashboard"
    for name in clone_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, target)
    return repo


@pytest.fixture(scope="module")
def generate(template, tmp_path_factory):
    """Run cookiecutter without prompts; its config and replay files stay in a temp folder."""
    home = tmp_path_factory.mktemp("cookiecutter-home")
    config = home / "config.yaml"
    config.write_text(f"cookiecutters_dir: {home / 'templates'}\nreplay_dir: {home / 'replay'}\n")

    def run(output_dir: Path, **answers: str) -> Path:
        return Path(
            cookiecutter(
                str(template),
                no_input=True,
                extra_context=answers,
                output_dir=str(output_dir),
                config_file=str(config),
            )
        )

    return run


@pytest.fixture(scope="module")
def default_project(generate, tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def custom_project(generate, tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("custom"), **CUSTOM)


def leftovers(project: Path) -> list[str]:
    """Template machinery or syntax found in `project`."""
    found = [
        name
        for name in (".git", ".venv", "hooks", "cookiecutter.json", "tests/test_cookiecutter.py")
        if (project / name).exists()
    ]
    for path in post_gen.text_files(project):
        text = path.read_text(encoding="utf-8")
        # Any word of cookiecutter but the name of cookiecutter-django, quoted as a reference.
        for leftover in re.findall(r"cookiecutter(?!-django)|template-only", text, re.I):
            found.append(f"{path.relative_to(project)}: {leftover}")
    return found


@pytest.mark.slow
def test_the_default_project_is_the_repository_without_the_template_machinery(default_project):
    assert default_project.name == "safety-dashboard"
    expected = [
        name
        for name in clone_files()
        if name not in MACHINERY and not name.startswith("hooks/") and not template_only(name)
    ]
    # ... and .env, with a key of its own (test_each_project_gets_a_secret_key_of_its_own).
    assert project_files(default_project) == sorted([*expected, ".env"])
    assert leftovers(default_project) == []
    # Byte for byte the root's files, but for the template's own lines and README block.
    differing = [
        name
        for name in expected
        if (default_project / name).read_bytes() != (PROJECT_ROOT / name).read_bytes()
    ]
    assert differing == [
        "Makefile",
        "README.md",
        "constraints.txt",
        "docs/decisions.md",
        "pyproject.toml",
    ]
    assert os.access(default_project / "manage.py", os.X_OK)


def imported_modules(source: str) -> list[str]:
    """The modules a Python file imports, by their full dotted names."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append(node.module or "")
    return found


@pytest.mark.slow
def test_the_default_project_ships_the_product_without_the_bench_or_the_templates_tests(
    default_project,
):
    files = project_files(default_project)
    assert not (default_project / "bench").exists()
    assert [name for name in files if name.startswith("scripts/measure_")] == []
    for gone in ("tests/test_cookiecutter.py", "tests/test_bench_smoke.py", "docs/benchmarks.md"):
        assert gone not in files
    # ...and the product whole: its code, its tests, compose, the forking guide.
    for kept in ("manage.py", "docker-compose.yml", "docs/forking.md", "tests/test_pipeline.py"):
        assert kept in files
    importers = [
        name
        for name in files
        if name.endswith(".py")
        for module in imported_modules((default_project / name).read_text(encoding="utf-8"))
        if module == "bench" or module.startswith(("bench.", "scripts.measure_"))
    ]
    assert importers == []
    mentions = [
        f"{name}: {found}"
        for name in ["Makefile", "pyproject.toml", *(n for n in files if n.endswith(".md"))]
        for found in TEMPLATE_ONLY_WORDS.findall((default_project / name).read_text())
    ]
    assert mentions == []
    makefile = (default_project / "Makefile").read_text()
    assert not re.search(r"^bench:", makefile, re.MULTILINE)
    assert re.search(r"^run:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


@pytest.mark.slow
def test_the_default_projects_own_suite_collects(default_project):
    """Its tests import without the template's (the full run: the custom project's below)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=default_project,
        env=generated_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert len(collected) > 100
    assert not any("bench" in line or "cookiecutter" in line for line in collected)


def env_file(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.slow
def test_each_project_gets_a_secret_key_of_its_own(default_project, custom_project):
    """Generation writes .env from .env.example with a fresh random key: no generated
    stack runs on the shipped placeholder, and no two share a key."""
    example = env_file(default_project / ".env.example")
    keys = []
    for project in (default_project, custom_project):
        env = env_file(project / ".env")
        assert env.keys() == example.keys()
        assert {k: v for k, v in env.items() if k != "DJANGO_SECRET_KEY"} == {
            k: v for k, v in example.items() if k != "DJANGO_SECRET_KEY"
        }
        keys.append(env["DJANGO_SECRET_KEY"])
        assert oct((project / ".env").stat().st_mode & 0o777) == "0o600"
    assert example["DJANGO_SECRET_KEY"] not in keys
    assert len(set(keys)) == 2
    assert all(len(key) >= 50 for key in keys)


@pytest.mark.slow
def test_the_default_readme_keeps_the_project_and_loses_the_template_section(default_project):
    readme = (default_project / "README.md").read_text()
    root_readme = (PROJECT_ROOT / "README.md").read_text()
    assert readme.splitlines()[0] == root_readme.splitlines()[0]
    assert "docker compose up" in readme
    assert "Your own project from this template" not in readme


@pytest.mark.slow
def test_a_custom_project_carries_the_answers_everywhere(custom_project):
    project = custom_project
    assert project.name == "forklift-watch"
    assert leftovers(project) == []
    assert (project / "README.md").read_text().startswith("# Line 3 forklift watch — ")
    assert (
        "<title>{% block title %}Line 3 forklift watch{% endblock %}</title>"
        in (project / "templates/base.html").read_text()
    )
    assert 'name = "forklift-watch"' in (project / "pyproject.toml").read_text()
    assert 'NOTIFY_CHANNEL = "forklift_events"' in (project / "violations/contract.py").read_text()
    assert (
        'env("TIME_ZONE", default="Europe/Berlin")'
        in (project / "config/settings/base.py").read_text()
    )
    assert (
        "such as `Europe/Berlin`; default `Europe/Berlin`)" in (project / "README.md").read_text()
    )
    assert (
        'env("CHANNEL_LAYER_PREFIX", default="forklift-watch")'
        in (project / "config/settings/base.py").read_text()
    )
    compose = (project / "docker-compose.yml").read_text()
    assert "name: forklift-watch\n" in compose
    assert "image: postgres:18\n" in compose
    assert "postgres-data:/var/lib/postgresql\n" in compose
    for path in post_gen.text_files(project):
        text = path.read_text(encoding="utf-8")
        assert "violations_channel" not in text, path
        assert "safety-dashboard" not in text, path
    # Without demo data: no simulator, and nothing that points at it.
    for name in post_gen.DEMO_ONLY_FILES:
        assert not (project / name).exists()
    assert not re.search(r"^demo:", (project / "Makefile").read_text(), re.MULTILINE)
    for path in post_gen.text_files(project):
        text = path.read_text(encoding="utf-8")
        assert "simulate_violations" not in text, path
        assert "make demo" not in text, path


@pytest.mark.slow
def test_the_custom_compose_file_follows_the_compose_spec(custom_project):
    result = subprocess.run(
        [
            *(sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"),
            str(custom_project / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_project_with_the_longest_allowed_answers_is_lint_clean(generate, tmp_path):
    """Answers land in source lines: at their longest they must not break `make lint`."""
    longest = {
        "project_name": "N" * pre_gen.NAME_MAX_LENGTH,
        "project_slug": "s" * pre_gen.SLUG_MAX_LENGTH,
        "notify_channel": "c" * 63,
        "time_zone": max(zoneinfo.available_timezones(), key=len),
    }
    assert pre_gen.problems(GOOD | longest) == []
    project = generate(tmp_path, **longest)
    ruff = Path(sys.executable).parent / "ruff"
    for check in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [ruff, *check], cwd=project, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr


def generated_env() -> dict[str, str]:
    """This environment minus what the session set for itself, plus its servers."""
    env = {k: v for k, v in os.environ.items() if k not in SESSION_ONLY_VARIABLES}
    env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env["REDIS_URL"] = os.environ["REDIS_URL"]
    return env


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_custom_projects_own_pipeline_and_compose_tests_pass(custom_project):
    # Its own code, not this checkout's (installed editable in this venv), is what runs.
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import violations.contract as c; print(c.__file__, c.NOTIFY_CHANNEL)",
        ],
        cwd=custom_project,
        env=generated_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(custom_project / "violations/contract.py"), "forklift_events"]

    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("tests/test_triggers.py", "tests/test_pipeline.py", "tests/test_compose.py"),
        ],
        cwd=custom_project,
        env=generated_env(),
        capture_output=True,
        text=True,
        timeout=540,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"\d+ passed", summary), summary
    assert "failed" not in summary
    assert "error" not in summary


@pytest.fixture(name="empty_database")
def generated_projects_database() -> Iterator[str]:
    with empty_database(os.environ["DATABASE_URL"], f"generated_{os.getpid()}") as url:
        yield url


@pytest.mark.slow
def test_the_custom_projects_migrations_notify_the_chosen_channel(custom_project, empty_database):
    env = generated_env() | {"DATABASE_URL": empty_database}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=custom_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    insert = (
        "INSERT INTO violation_ppedetections(camera_id, violation_date, violation_time, "
        "violation_image) VALUES (3, '2025-07-28', '15:00', 'x.jpg')"
    )
    psql = subprocess.run(
        [
            *(psql_binary(), empty_database, "-v", "ON_ERROR_STOP=1", "-q"),
            *("-c", "LISTEN forklift_events", "-c", "LISTEN violations_channel"),
            *("-c", insert),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert psql.returncode == 0, psql.stderr
    notified = re.findall(
        r'Asynchronous notification "(\w+)" with payload "(.*)" received', psql.stdout
    )
    assert [(channel, json.loads(payload)["table"]) for channel, payload in notified] == [
        ("forklift_events", "violation_ppedetections")
    ]


@pytest.mark.slow
def test_a_bad_channel_is_refused_with_a_clear_message_and_nothing_is_written(
    generate, tmp_path, capfd
):
    with pytest.raises(FailedHookException):
        generate(tmp_path, notify_channel="x; drop table")
    err = capfd.readouterr().err
    assert "notify_channel 'x; drop table' is not a valid channel name" in err
    assert "Nothing was generated" in err
    assert list(tmp_path.iterdir()) == []
