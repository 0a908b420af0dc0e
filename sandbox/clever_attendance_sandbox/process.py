"""Start the sandbox as a child process and stop it, for tests, the demo and the benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import requests

READY_SECONDS = 60


@contextmanager
def running_sandbox(*args: str, workdir: str | None = None) -> Iterator[dict]:
    """Yield the sandbox's URLs and credentials while it runs; always stop it afterwards."""
    with tempfile.TemporaryDirectory(prefix="sandbox-", dir=workdir) as tmp:
        state = Path(tmp) / "sandbox.json"
        log = open(Path(tmp) / "sandbox.log", "wb")
        cmd = [sys.executable, "-m", "clever_attendance_sandbox", "serve", "--state-file", str(state),
               "--db", str(Path(tmp) / "safety-shield.sqlite"), *args]
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + READY_SECONDS
            while not state.exists():
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sandbox did not start within {READY_SECONDS}s: "
                                       + (Path(tmp) / "sandbox.log").read_text(errors="replace")[-2000:])
                time.sleep(0.05)
            yield json.loads(state.read_text())
        finally:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            log.close()


def set_faults(info: dict, service: str, **faults: object) -> None:
    """Replace the faults of `clever` or `upload` at run time (all others back to off; Clever forgets touched
    syncs)."""
    url = info["clever_url" if service == "clever" else "upload_url"] + "/admin/faults"
    requests.put(url, json=faults, timeout=10).raise_for_status()


def move_clock(info: dict, now: datetime, district_id: str | None = None) -> None:
    """Set the Clever sandbox's clock: of every district, or of one alone (its sync and records move on)."""
    body = {"now": now.isoformat(), "district": district_id}
    requests.put(info["clever_url"] + "/admin/clock", json=body, timeout=10).raise_for_status()


def touch_sync(info: dict, clever_district_id: str) -> str:
    """Have a district re-upload unchanged data to the Clever sandbox; returns its new last_attendance_sync."""
    answer = requests.post(info["clever_url"] + "/admin/touch-sync", json={"district": clever_district_id},
                           timeout=10)
    answer.raise_for_status()
    return answer.json()["last_attendance_sync"]
