"""One child process of ours: started, waited for until it answers, stopped by pid.

`make run`, the tests and the bench all start their servers through `ServerProcess`. Its
output goes to a log file (tests, bench) or, line by line, to a callback (`make run`
prefixes each line with the process's name); either way `log()` is what it said since it
started. Each child gets a session of its own, so a Ctrl-C in the terminal reaches only
its parent, and `stop()` can end everything the child started (a server's workers) by
signalling the group: SIGTERM, then SIGKILL after a grace period.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

from devstack.local import PROJECT_ROOT
from devstack.ports import wait_until

START_TIMEOUT = 60.0  # seconds; generous, as a loaded 2-core machine can be slow
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
LOG_TAIL_CHARS = 4000


class ProcessExited(RuntimeError):
    """The process ended before it was ready."""

    def __init__(self, name: str, returncode: int, log: str) -> None:
        self.name, self.returncode, self.log = name, returncode, log
        super().__init__(f"{name} exited with code {returncode}:\n{log[-LOG_TAIL_CHARS:]}")


class NotReady(TimeoutError):
    """The process still did not answer after the timeout (it has been stopped)."""

    def __init__(self, name: str, timeout: float, log: str) -> None:
        self.name, self.timeout, self.log = name, timeout, log
        super().__init__(
            f"{name} not ready after {timeout:g} s\n--- its output ---\n{log[-LOG_TAIL_CHARS:]}"
        )


def log_has(*texts: str) -> "Callable[[ServerProcess], bool]":
    """A readiness predicate: its output since it started holds one of `texts`."""
    return lambda process: any(text in process.log() for text in texts)


class ServerProcess:
    """`argv` as a child process; `ready()` says when it answers (override it, or pass
    `ready=`, called with the process). Output goes to `log_path` (appended) or, when that
    is None, line by line to `on_line` (and kept for `log()`)."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        *,
        name: str | None = None,
        cwd: Path = PROJECT_ROOT,
        ready: "Callable[[ServerProcess], bool] | None" = None,
        on_line: Callable[[str], None] | None = None,
        start_timeout: float = START_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.log_path = log_path
        self.name = name or Path(self.argv[0]).name
        self.cwd = cwd
        self._ready = ready
        self.on_line = on_line
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen | None = None
        self._log_offset = 0
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None

    # --- starting -------------------------------------------------------------------------
    def start(self, *, wait: bool = True) -> Self:
        """Start it; unless `wait` is false, return once `ready()` holds."""
        self._lines = []
        options = {
            "cwd": self.cwd,
            "env": self.env,
            "stdin": subprocess.DEVNULL,
            "stderr": subprocess.STDOUT,
            # Its own session: Ctrl-C reaches only us, and stop() can signal its group.
            "start_new_session": True,
        }
        if self.log_path is None:
            self.process = subprocess.Popen(
                self.argv, stdout=subprocess.PIPE, text=True, errors="replace", **options
            )
            self._reader = threading.Thread(target=self._pass_on, daemon=True)
            self._reader.start()
        else:
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(self.argv, stdout=log, **options)
        if wait:
            self.wait_until_ready()
        return self

    def _pass_on(self) -> None:
        for line in self.process.stdout:
            self._lines.append(line)
            if self.on_line is not None:
                self.on_line(line.rstrip("\n"))

    def ready(self) -> bool:
        """Whether it answers; by default, the `ready` predicate given, or simply started."""
        return True if self._ready is None else self._ready(self)

    def wait_until_ready(self, timeout: float | None = None) -> None:
        """Poll `ready()`; ProcessExited if it ends first, NotReady (after stopping it) if
        it does not answer within `timeout` (start_timeout by default)."""
        timeout = self.start_timeout if timeout is None else timeout

        def up() -> bool:
            if self.exited():
                raise ProcessExited(self.name, self.process.returncode, self.log())
            return self.ready()

        try:
            wait_until(up, timeout=timeout, what=self.name, interval=0.05)
        except TimeoutError:
            self.stop()
            raise NotReady(self.name, timeout, self.log()) from None

    # --- while it runs ----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def log(self, since_start: bool = True) -> str:
        """What it printed since this start (or, with a log file, everything in the file)."""
        if self.log_path is None:
            return "".join(self._lines)
        if not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()
        return data[self._log_offset if since_start else 0 :].decode(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float = 15, since: int = 0) -> None:
        """Wait until its output since this start (from character `since`) holds `text`."""
        wait_until(
            lambda: text in self.log()[since:],
            timeout=timeout,
            what=f"{text!r} in {self.name}'s output",
        )

    def signal(self, signum: int) -> None:
        """`signum` to its whole process group: a server's workers too."""
        os.killpg(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        """Its exit code once it has ended (and, for `on_line`, all its output is passed on)."""
        code = self.process.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    # --- stopping ---------------------------------------------------------------------------
    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM to its group, SIGKILL after `timeout` (stop_timeout by default) if it
        has not ended; then whatever of its group is left is killed. Its exit code."""
        if self.process is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if self.on_line is not None:
                    self.on_line(f"did not stop within {timeout:g} s; killing it")
                self._signal_group(signal.SIGKILL)
        code = self.wait()
        self._kill_leftovers()
        return code

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def _kill_leftovers(self, timeout: float = 5.0) -> None:
        # A worker whose parent has gone keeps the group (and the port) alive: end it too.
        # The group's id cannot be reused while any member lives, so this hits only ours.
        self._signal_group(signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
