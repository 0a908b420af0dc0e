"""The review DAG's trust boundary, tried as an attacker with a login that may trigger `clever_attendance_review`:
a run acts only on a hold the data guard recorded in the ledger under the run's own id, on the file whose digest
it recorded; a run's conf names the hold and nothing else, and every path is derived (what a real review does:
in test_scheduler)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from clever_attendance.contracts import DayCounts, Decision, RunOptions, Window
from clever_attendance.errors import RunInputError
from clever_attendance.hooks.ledger import LedgerHook
from clever_attendance.ledger.tables import holds as holds_table
from clever_attendance.pipeline import config, holds, staging
from clever_attendance.pipeline import guard as rules

HEADER = ("SchoolID,Student_Number,Att_Date,Att_Mode_Code,Period,Course_Number,Section_Number,Att_Code,"
          "Presence_Status_CD,Att_Comment,Last_Modified\n")
SPRINGFIELD = HEADER + "".join(f"101,2004{n:02},11/16/2026,ATT_ModeDaily,,,,A,Absent,,2026-11-16T12:00:00Z\n"
                               for n in range(30))
SHELBYVILLE = HEADER + "".join(f"201,3007{n:02},11/16/2026,ATT_ModeDaily,,,,A,Absent,,2026-11-16T12:00:00Z\n"
                               for n in range(40))


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTENDANCE_STAGING_URL", str(tmp_path / "staging"))
    monkeypatch.setenv("AIRFLOW_CONN_ATTENDANCE_LEDGER",
                       f'{{"conn_type": "sqlite", "host": "{tmp_path / "ledger.db"}"}}')
    return tmp_path


def run(run_id: str, conf: dict) -> SimpleNamespace:
    """A review run as `review_of` reads it: its id and the conf anyone who triggers it may give."""
    return SimpleNamespace(run_id=run_id, conf=conf)


def held_by_the_guard(slug: str, content: str) -> str:
    """What the guard does with a district whose school 101 is all absent on 2026-11-16: the hold's run id."""
    district = config.load().district(slug)
    finding = rules.Finding("2026-11-16", "sc101", "101", "absent share jumped", 30, 30, 1.0, 30, 0.05, 10)
    plan = rules.DatePlan("2026-11-16", "hold", rules.fingerprint([finding]), [finding])
    counts = {"2026-11-16": DayCounts(read=30, delivered=30)}
    run_id = holds._hold(district, Window.parse("2026-11-16_2026-11-16"), [plan], content.encode(),
                         "clever_attendance", "scheduled__x", datetime(2026, 11, 16, 15, tzinfo=UTC), counts)
    assert holds.review_conf(run_id) == {"hold": run_id}, "the conf names the hold, nothing else"
    assert RunOptions.parse(holds.review_conf(run_id)).hold == run_id
    return run_id


def test_a_run_that_names_no_recorded_hold_is_refused(ledger):
    real = held_by_the_guard("springfield", SPRINGFIELD)
    with pytest.raises(RunInputError, match="names no hold the data guard recorded"):
        holds.review_of(run("manual__forged", {"hold": "manual__forged"}))
    with pytest.raises(RunInputError, match="field 'hold' must name the run's own hold"):
        holds.review_of(run("manual__forged", {"hold": real}))  # another run's hold: its decision is not this run's
    with pytest.raises(RunInputError, match="field 'hold'"):
        holds.review_of(run("manual__forged", {"district": "springfield", "held_path": "/etc/passwd", "dates": []}))


def test_a_conf_path_to_another_districts_file_is_ignored_and_only_the_held_rows_go(ledger):
    """The old attack: a review whose conf points `held_path` at shelbyville's staged file uploaded it as
    springfield's. The path is derived from the recorded hold; the conf's is never read."""
    shelbyville_run = held_by_the_guard("shelbyville", SHELBYVILLE)
    springfield_run = held_by_the_guard("springfield", SPRINGFIELD)
    conf = {"hold": springfield_run, "district": "shelbyville",
            "held_path": str(staging.hold_folder("shelbyville", shelbyville_run) / "held.csv")}
    review = holds.review_of(run(springfield_run, conf))
    assert review.district == "springfield" and review.held_path.parent == staging.hold_folder(
        "springfield", springfield_run)
    path, rows_by_date = holds.deliver(review, rules.APPROVE)
    assert staging.root().fs.cat(path).decode() == SPRINGFIELD, "exactly springfield's held rows"
    assert rows_by_date == {"2026-11-16": 30}
    assert review.dates[0].counts == DayCounts(read=30, delivered=30), "the counts the guard recorded"


def test_a_held_file_swapped_on_disk_is_refused(ledger):
    run_id = held_by_the_guard("springfield", SPRINGFIELD)
    review = holds.review_of(run(run_id, {"hold": run_id}))
    review.held_path.write_text(SHELBYVILLE)  # someone with the staging volume swaps the file
    with pytest.raises(RunInputError, match="not the one the data guard recorded"):
        holds.deliver(review, rules.APPROVE)
    assert not (review.held_path.parent / "decided.csv").exists(), "nothing to upload was written"


def test_a_decision_removes_only_the_holds_own_folder(ledger):
    """A timed-out review used to remove the folder its conf named: now only the hold's own."""
    other = held_by_the_guard("shelbyville", SHELBYVILLE)
    run_id = held_by_the_guard("springfield", SPRINGFIELD)
    review = holds.review_of(run(run_id, {"hold": run_id, "held_path": str(staging.root() / "_holds" / "x" / "y")}))
    holds.decide(review, Decision.NO_DECISION, None, keep_files=False)
    assert not review.held_path.parent.exists()
    assert (staging.hold_folder("shelbyville", other) / "held.csv").read_text() == SHELBYVILLE
    with LedgerHook().get_conn().connect() as db:
        decided = dict(db.execute(sa.select(holds_table.c.review_run_id, holds_table.c.decision)).all())
    assert decided == {run_id: "no decision", other: None}
