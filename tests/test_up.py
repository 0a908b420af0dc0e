"""`make up` stops everything it started on Ctrl-C or SIGTERM: no Airflow component or sandbox outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from clever_attendance_sandbox.local_airflow import answers, free_port, wait_for
from clever_attendance_sandbox.wiring import ROOT


def family(pid: int) -> set[psutil.Process]:
    """The process and everything it started, however deep."""
    try:
        parent = psutil.Process(pid)
        return {parent, *parent.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def command_line(process: psutil.Process) -> str:
    """A process's command line; empty once it has ended (a zombie has none)."""
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:  # ZombieProcess included
        return ""


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie: a process that ended between two questions has ended."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def make_up(tmp_path):
    """`make up` on free ports, running and ready (its UI answers, its scheduler runs): the process, and every
    process of its family seen so far. Starts Airflow and the sandbox: not in the fast tier (conftest's SERVERS)."""
    port = free_port()
    command = [sys.executable, "-m", "clever_attendance_sandbox.demo.up", "--port", str(port), "--clever-port",
               str(free_port()), "--upload-port", str(free_port()), "--work", str(tmp_path / "up")]
    # a terminal's Ctrl-C goes to its foreground process group: here, a group of the test's own, which hears SIGINT
    # as a foreground job does even when the tests run as a background job (which ignores SIGINT, as its children
    # would). Its output goes to a file, which a failure quotes.
    output = tmp_path / "up.log"
    heard = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with open(output, "wb") as out:
            up = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)
    finally:
        signal.signal(signal.SIGINT, heard)
    seen: set[psutil.Process] = set()
    try:
        def ready() -> bool:
            seen.update(family(up.pid))
            if up.poll() is not None:
                raise RuntimeError(f"make up exited {up.returncode}: {output.read_text()[-2000:]}")
            return answers(port) and any("scheduler" in command_line(p) for p in seen)
        wait_for(f"make up's Airflow UI on port {port} and its scheduler", ready, 300)
        seen.update(family(up.pid))
        yield up, seen
    finally:
        for process in family(up.pid) | seen:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass


@pytest.mark.timeout(420)
def test_ctrl_c_on_make_up_stops_every_process_it_started(make_up, tmp_path):
    up, seen = make_up
    assert len(seen) > 5, "the sandbox, airflow standalone and its components"
    os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group
    try:
        up.wait(60)
    except subprocess.TimeoutExpired:
        said = (tmp_path / "up.log").read_text()[-3000:]
        raise AssertionError(f"make up still runs 60 s after Ctrl-C; it said: {said}") from None
    wait_for("every process make up started to end", lambda: not [p for p in seen if alive(p)], 60)
    assert up.returncode == 0


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """A service manager's SIGTERM reaches `make up` or `make cluster` alone: its `finally` still stops what it
    started (the same path as Ctrl-C above)."""
    done = tmp_path / "stopped"
    script = (f"from clever_attendance_sandbox.local_airflow import interrupt_on_sigterm\n"
              f"import time\ninterrupt_on_sigterm()\n"
              f"try:\n    print('ready', flush=True)\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    pass\n"
              f"finally:\n    open({str(done)!r}, 'w').write('what it started is stopped')\n")
    command = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert command.stdout.readline() == b"ready\n"
        command.send_signal(signal.SIGTERM)
        assert command.wait(30) == 0
        assert done.read_text() == "what it started is stopped"
    finally:
        command.kill()
