"""The data guard: each school's day in the district's file against the school's own recent school days.

Feeds break in known ways (a school's file sent with every student absent, a school missing, a half-empty
file); each shows as a school whose day is far from its usual. Pure: the history comes from the ledger's
`school_days`, the day from the transform's, and only counts and shares come out, never student data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import median

from clever_attendance.contracts import Decision, GuardAction
from clever_attendance.pipeline.config import Guard

OK, NO_BASELINE, SMALL = "ok", "no baseline", "small school"
COLLAPSED, ABSENT_JUMP = "records collapsed", "absent share jumped"
SUSPICIOUS = (COLLAPSED, ABSENT_JUMP)


@dataclass(frozen=True)
class Finding:
    """One school's day as the guard sees it: its counts next to its usual (medians of its recent school days)."""

    attendance_date: str
    school_id: str
    school_number: str
    verdict: str
    records: int
    students: int
    absent_share: float | None
    usual_students: float | None = None
    usual_absent_share: float | None = None
    baseline_days: int = 0

    @property
    def suspicious(self) -> bool:
        return self.verdict in SUSPICIOUS

    def line(self) -> str:
        """How notices, the decision form and the report describe it (counts and shares only)."""
        usual = "" if self.usual_students is None else (
            f" (usual: {self.usual_students:g} students, {self.usual_absent_share:.0%} absent, "
            f"over {self.baseline_days} school days)")
        share = "-" if self.absent_share is None else f"{self.absent_share:.0%}"
        school = f"{self.school_number} (Clever {self.school_id})" if self.school_number else f"Clever {self.school_id}"
        return (f"{self.attendance_date} school {school}: {self.verdict}: "
                f"{self.records} records, {self.students} students, {share} absent{usual}")


@dataclass(frozen=True)
class Verdict:
    findings: list[Finding]
    no_attendance: list[str]  # dates without a record anywhere in the district: a weekend or a holiday

    @property
    def suspicious(self) -> list[Finding]:
        return [f for f in self.findings if f.suspicious]


def _share(row: dict) -> float:
    return row["absent"] / row["records"]


def inspect(day_rows: list[dict], history: list[dict], dates: list[str], guard: Guard) -> Verdict:
    """Every school of every date of the window: `day_rows` are the file's per school and date (records,
    absent, students), `history` the ledger's rows of the district's schools before the window's dates."""
    by_date: dict[str, dict[str, dict]] = {}
    for row in day_rows:
        by_date.setdefault(row["attendance_date"], {})[row["school_id"]] = row
    past: dict[str, list[dict]] = {}
    for row in sorted(history, key=lambda r: r["attendance_date"]):
        if row["records"]:
            past.setdefault(row["school_id"], []).append(row)
    findings, quiet = [], []
    for day in dates:
        today = {school: row for school, row in by_date.get(day, {}).items() if row["records"]}
        if not today:
            quiet.append(day)
            continue
        for school in sorted(set(today) | set(past)):
            usual = [r for r in past.get(school, []) if r["attendance_date"] < day][-guard.baseline_days:]
            row = today.get(school)
            if row is None and len(usual) < guard.min_baseline_days:
                continue  # a school the district no longer sends, or never sent often: nothing to expect
            findings.append(_judge(day, school, row, usual, guard))
    return Verdict(findings, quiet)


def _judge(day: str, school: str, row: dict | None, usual: list[dict], guard: Guard) -> Finding:
    number = (row or usual[-1])["school_number"]
    records, students = (row["records"], row["students"]) if row else (0, 0)
    share = row["absent"] / records if row else None
    if len(usual) < guard.min_baseline_days:
        return Finding(day, school, number, NO_BASELINE, records, students, share, baseline_days=len(usual))
    usual_students, usual_share = median(r["students"] for r in usual), median(_share(r) for r in usual)
    found = Finding(day, school, number, OK, records, students, share, usual_students, round(usual_share, 4),
                    len(usual))
    if usual_students < guard.min_students:
        verdict = SMALL
    elif students < guard.min_students_share * usual_students:
        verdict = COLLAPSED  # students, not records: per-period records grow through the day, students do not
    elif share is not None and (share == 1 or share > max(guard.absent_factor * usual_share,
                                                          usual_share + guard.absent_points)):
        verdict = ABSENT_JUMP
    else:
        return found
    return Finding(**{**asdict(found), "verdict": verdict})


APPROVE, REJECT, PARTIAL = "Approve", "Reject", "Upload all but the suspicious schools"  # a person's choices
DECISIONS = {APPROVE: Decision.APPROVED, REJECT: Decision.REJECTED, PARTIAL: Decision.PARTLY_APPROVED}
PENDING = None  # a hold waiting for a person


def fingerprint(findings: list[Finding]) -> str:
    """What a person decides on: a date's suspicious schools and their counts. The same data held again is not
    asked about again; changed data is."""
    import hashlib

    key = sorted((f.school_id, f.records, f.students, f.absent_share) for f in findings)
    return hashlib.sha256(repr(key).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DatePlan:
    """What the guard does with one date of the district's file."""

    attendance_date: str
    action: GuardAction
    fingerprint: str
    findings: list[Finding]
    decided_by: str | None = None

    @property
    def schools(self) -> list[str]:
        return [f.school_number or f.school_id for f in self.findings]


def plan(verdict: Verdict, decisions: dict[tuple[str, str], dict], stale_before: str) -> list[DatePlan]:
    """Per date with suspicious schools: ask (a new hold), keep waiting (a pending one), or apply what a person
    decided on the same data; `decisions` are the ledger's holds by (date, fingerprint). Approved data passes. A
    hold still pending though made before `stale_before` (its request is gone: the run deleted, say) asks again."""
    by_date: dict[str, list[Finding]] = {}
    for found in verdict.suspicious:
        by_date.setdefault(found.attendance_date, []).append(found)
    plans = []
    for day, findings in sorted(by_date.items()):
        mark = fingerprint(findings)
        known = decisions.get((day, mark))
        decision = known["decision"] if known else Decision.NO_DECISION
        if known and decision is PENDING and known["held_at"] < stale_before:
            decision = Decision.NO_DECISION
        if decision == Decision.APPROVED:
            continue
        action = {Decision.REJECTED: GuardAction.DROP, Decision.PARTLY_APPROVED: GuardAction.TRIM,
                  PENDING: GuardAction.WAIT}.get(decision, GuardAction.HOLD)
        plans.append(DatePlan(day, action, mark, findings, (known or {}).get("decided_by")))
    return plans

