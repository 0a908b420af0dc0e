"""`make up` stops everything it started on Ctrl-C or SIGTERM: no Airflow component or sandbox outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from clever_attendance.sandbox.local_airflow import answers, free_port, wait_for
from clever_attendance.sandbox.wiring import ROOT


def family(pid: int) -> set[psutil.Process]:
    """The process and everything it started, however deep."""
    try:
        parent = psutil.Process(pid)
        return {parent, *parent.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.timeout(420)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_make_up_stops_every_process_it_started(tmp_path, sig):
    port = free_port()
    command = [sys.executable, "-m", "clever_attendance.demo.up", "--port", str(port), "--clever-port",
               str(free_port()), "--upload-port", str(free_port()), "--work", str(tmp_path / "up")]
    # a terminal's Ctrl-C goes to its foreground process group: here, a group of the test's own
    up = subprocess.Popen(command, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen: set[psutil.Process] = set()
    try:
        def ready() -> bool:
            seen.update(family(up.pid))
            if up.poll() is not None:
                raise RuntimeError(f"make up exited {up.returncode}: {up.stdout.read().decode()[-2000:]}")
            return answers(port) and any("scheduler" in " ".join(p.cmdline()) for p in seen if p.is_running())
        wait_for(f"make up's Airflow UI on port {port} and its scheduler", ready, 300)
        seen.update(family(up.pid))
        assert len(seen) > 5, "the sandbox, airflow standalone and its components"
        if sig == signal.SIGINT:
            os.killpg(up.pid, sig)  # Ctrl-C: the whole foreground group
        else:
            up.send_signal(sig)  # a service manager: the command alone
        up.wait(60)
        wait_for("every process make up started to end", lambda: not [p for p in seen if p.is_running()
                                                                       and p.status() != psutil.STATUS_ZOMBIE], 60)
        assert up.returncode == 0
    finally:
        for process in family(up.pid) | seen:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
