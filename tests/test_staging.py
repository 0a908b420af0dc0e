"""Staged files hold student data: private, and removed within a stated time whatever the run's outcome."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime

from clever_attendance.pipeline import staging


def aged(folder, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(folder.path, (then, then))


def test_failed_and_dry_runs_files_go_after_their_retention_and_pending_holds_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENDANCE_STAGING_URL", str(tmp_path))
    runs = {name: staging.run_folder("clever_attendance", "springfield", "2026-11-16_2026-11-19", name)
            for name in ("failed_4_days_ago", "dry_run_yesterday")}
    other_dag = staging.run_folder("clever_attendance_daily", "springfield", "2026-11-16_2026-11-16", "failed_old")
    holds = {name: staging.hold_folder("springfield", name) for name in ("rejected_40_days_ago", "pending_6_days")}
    for folder in (*runs.values(), other_dag, *holds.values()):
        staging.make_private(folder)
        with staging.open_private(folder / "attendance.csv") as out:
            out.write(b"SchoolID\n")
    aged(runs["failed_4_days_ago"], 4), aged(runs["dry_run_yesterday"], 1), aged(other_dag, 10)
    aged(holds["rejected_40_days_ago"], 40), aged(holds["pending_6_days"], 6)

    assert staging.sweep("clever_attendance", datetime.now(UTC), staging_days=3, holds_days=30) == 2
    assert not runs["failed_4_days_ago"].exists() and not holds["rejected_40_days_ago"].exists()
    assert runs["dry_run_yesterday"].exists() and holds["pending_6_days"].exists()
    assert other_dag.exists(), "each DAG's report sweeps its own runs' files"
    assert stat.S_IMODE(os.stat(runs["dry_run_yesterday"].path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat((runs["dry_run_yesterday"] / "attendance.csv").path).st_mode) == 0o600
