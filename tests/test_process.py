"""devstack.process.ServerProcess, the one process helper of `make run`, the tests and the
bench, with real child processes (`python -c`): started, waited for, stopped by pid."""

import os
import signal
import sys
import time

import psutil
import pytest

from devstack.process import NotReady, ProcessExited, ServerProcess, log_has

PY = sys.executable
pytestmark = pytest.mark.slow  # each test starts a child process (fast ones, but processes)


def python(code: str, tmp_path, **options) -> ServerProcess:
    return ServerProcess([PY, "-u", "-c", code], log_path=tmp_path / "child.log", **options)


def test_ready_when_the_predicate_holds_and_the_log_is_this_starts_only(tmp_path):
    (tmp_path / "child.log").write_text("an earlier run said ready\n")
    child = python(
        "import time; print('warming up'); time.sleep(0.3); print('ready'); time.sleep(60)",
        tmp_path,
        ready=log_has("ready"),
    )
    started = time.monotonic()
    child.start()
    try:
        assert time.monotonic() - started >= 0.3  # not fooled by the earlier run's line
        assert child.log() == "warming up\nready\n"
        assert "earlier run" in child.log(since_start=False)
        assert child.running()
    finally:
        assert child.stop() == -signal.SIGTERM
    assert not child.running()


def test_a_child_that_exits_before_it_is_ready_is_reported_with_its_output(tmp_path):
    child = python("print('no database'); raise SystemExit(3)", tmp_path, ready=log_has("never"))
    with pytest.raises(ProcessExited, match=r"exited with code 3:\nno database") as exited:
        child.start()
    assert exited.value.returncode == 3


def test_a_child_that_never_answers_is_stopped_and_its_output_is_in_the_error(tmp_path):
    child = python(
        "print('stuck'); import time; time.sleep(60)",
        tmp_path,
        ready=lambda _: False,
        start_timeout=0.5,
    )
    with pytest.raises(NotReady, match=r"not ready after 0.5 s\n--- its output ---\nstuck"):
        child.start()
    assert child.exited()  # stopped, not left behind


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path):
    child = python(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up');"
        " time.sleep(60)",
        tmp_path,
        ready=log_has("up"),
        stop_timeout=0.5,
    ).start()
    started = time.monotonic()
    assert child.stop() == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5


def test_stop_ends_the_childs_own_children_too(tmp_path):
    """A server's workers are in its process group: stopping the server ends them, even one
    that would outlive its parent."""
    worker = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    child = python(
        f"import subprocess, sys, time; w = subprocess.Popen([sys.executable, '-c', {worker!r}]);"
        " print('worker', w.pid); time.sleep(60)",
        tmp_path,
        ready=log_has("worker"),
    ).start()
    worker_pid = int(child.log().split()[1])
    worker_process = psutil.Process(worker_pid)
    assert os.getpgid(worker_pid) == child.pid  # its own group, led by the child

    child.stop()
    worker_process.wait(timeout=5)  # raises psutil.TimeoutExpired if it lives on
    assert not psutil.pid_exists(worker_pid) or worker_process.status() == "zombie"


def test_without_a_log_file_each_line_goes_to_on_line_and_is_kept(tmp_path):
    lines: list[str] = []
    child = ServerProcess(
        [PY, "-u", "-c", "print('one'); print('two')"], on_line=lines.append, name="demo"
    ).start(wait=False)
    assert child.wait(timeout=10) == 0
    assert lines == ["one", "two"]
    assert child.log() == "one\ntwo\n"


def test_signal_reaches_the_child_and_wait_for_log_sees_what_it_says(tmp_path):
    child = python(
        "import signal, time\n"
        "signal.signal(signal.SIGUSR1, lambda *_: print('got USR1', flush=True))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)",
        tmp_path,
        ready=log_has("up"),
    ).start()
    try:
        child.signal(signal.SIGUSR1)
        child.wait_for_log("got USR1", timeout=10)
    finally:
        child.stop()
