"""`python -m violations.listener_health FILE [--max-age SECONDS]`: is the listener alive?

For a container healthcheck (docker-compose.yml): exit 0 if `listen_notify --health-file
FILE` touched FILE within the last `--max-age` seconds (it does after every health query,
every 10 s, and every standby poll), else 1 with the reason on stderr. A listener that is
reconnecting, hung or gone stops touching it. No Django: it runs in a fraction of a second.
"""

import argparse
import sys
import time
from pathlib import Path

# Two health intervals (10 s) and the health query's own deadline (5 s), with slack.
MAX_AGE = 30.0


def age_problem(path: Path, max_age: float, now: float) -> str | None:
    """Why `path` says the listener is not alive, or None if it is."""
    try:
        age = now - path.stat().st_mtime
    except FileNotFoundError:
        return f"{path} does not exist: the listener has not proved itself yet, or stopped"
    if age > max_age:
        return f"{path} is {age:.0f} s old (at most {max_age:g} s): the listener is not delivering"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-age", type=float, default=MAX_AGE)
    options = parser.parse_args(argv)
    problem = age_problem(options.file, options.max_age, time.time())
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
