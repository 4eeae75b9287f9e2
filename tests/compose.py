"""Reading docker-compose.yml, .env.example and the Dockerfile the way Docker would.

There is no Docker engine here, so the compose tests run each service's own command as a
local process. These helpers read the files (never a hand-copied list) and translate a
container's view of the world to this machine's: service host names to the test
session's PostgreSQL and Redis, the published port to a free one, 0.0.0.0 to 127.0.0.1.
"""

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.processes import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $.
_INTERPOLATION = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """`text` with compose's `${...}` filled in from `variables` (what .env gives compose)."""

    def fill(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = variables.get(name)
        missing = value is None or (value == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if missing else value
        if op in ("?", ":?"):
            if missing:
                raise InterpolationError(f"required variable {name} is missing a value: {arg}")
            return value
        return value or ""

    return _INTERPOLATION.sub(fill, text)


def variables_used(text: str) -> dict[str, bool]:
    """Every `${VAR}` in `text`: name -> whether compose has a default for it."""
    used: dict[str, bool] = {}
    for match in _INTERPOLATION.finditer(text):
        if match.group("name"):
            has_default = match.group("op") in ("-", ":-")
            used[match.group("name")] = used.get(match.group("name"), True) and has_default
    return used


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def load_compose(variables: Mapping[str, str] | None = None) -> dict:
    """docker-compose.yml as compose sees it: anchors merged, then `${...}` filled in.

    Like compose, this fills in string values after parsing the YAML, so a value such as
    `${DEBUG}` stays a string whatever it becomes.
    """
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    return compose if variables is None else _interpolate_values(compose, variables)


def _interpolate_values(node, variables: Mapping[str, str]):
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: _interpolate_values(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_values(value, variables) for value in node]
    return node


def app_services(compose: Mapping) -> dict[str, dict]:
    """The services built from our Dockerfile (the ones running our code)."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def command_argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else list(command)


def healthcheck_argv(service: Mapping) -> list[str]:
    """A healthcheck's `test` as an argv (CMD) or a shell invocation (CMD-SHELL)."""
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return ["sh", "-c", test]
    kind, *rest = test
    return ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest


# --- Dockerfile --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions in order, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    return instructions


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """What the image's ENV instructions set (KEY=VALUE form)."""
    env = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


# --- Container view -> this machine ---------------------------------------------------------


def translate_env(env: Mapping[str, str], hosts: Mapping[str, str]) -> dict[str, str]:
    """`env` with every URL naming a compose service (`db`, `redis`) replaced by `hosts[name]`.

    Fails if a service URL is left that this machine cannot reach.
    """
    local = {}
    for key, value in env.items():
        value = str(value)
        host = urlsplit(value).hostname if "://" in value else None
        if host in hosts:
            local[key] = hosts[host]
        else:
            assert host not in ("db", "redis"), f"{key}={value} names a service we cannot map"
            local[key] = value
    return local


def translate_argv(argv: list[str], container_port: int, local_port: int) -> list[str]:
    """Bind 127.0.0.1 instead of all interfaces and `local_port` instead of the container's."""
    port = str(container_port)
    local = []
    for arg in argv:
        if arg == "0.0.0.0":  # noqa: S104 (what the container binds; we never do)
            arg = "127.0.0.1"
        elif arg == port:
            arg = str(local_port)
        else:
            arg = arg.replace(f":{port}/", f":{local_port}/")
        local.append(arg)
    return local
