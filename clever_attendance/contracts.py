"""What the pipeline's parts hand each other: a run's options and dates, the statuses it records, and what its tasks
pass through XCom.

XCom holds each contract as plain JSON (`to_xcom`/`from_xcom`, used only at that edge): paths, counts and ids, never
a DataFrame or student data. The ledger depends on this module alone of the pipeline's, so it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, timedelta
from enum import Enum, StrEnum
from typing import Any

from clever_attendance.errors import RunInputError


class Status(StrEnum):
    """Where a district stands after a run (the report) and a date (the ledger, the board): the very strings stored
    and shown. A person's decision may name who made it: `Status.REJECTED.by("ana")`."""

    UPLOADED = "uploaded"  # the rows reached Safety Shield
    APPROVED = "uploaded: approved"  # held rows a person approved
    TRIMMED = "uploaded without suspicious schools"  # held rows a person let through, but the suspicious schools'
    NO_ATTENDANCE = "no attendance"  # Clever holds none (a weekend, a holiday): nothing posted
    UNCHANGED = "unchanged"  # Safety Shield holds these rows already: not posted again
    HELD = "held for a person"  # the guard held some dates (a district: the rest were uploaded)
    REJECTED = "held: rejected"  # a person rejected the held rows
    NO_DECISION = "held: no decision"  # nobody decided in time
    DRY_RUN = "dry run"
    NOTHING_NEW = "skipped: nothing new"
    ELSEWHERE = "skipped: in another run"
    FAILED_AT_EXTRACT = "failed at extract"
    FAILED_AT_TRANSFORM = "failed at transform"
    FAILED_AT_UPLOAD = "failed at upload"

    def by(self, person: str | None) -> str:
        """The status as a person left it: `held: rejected by ana` (the status alone when nobody is named)."""
        return f"{self} by {person}" if person else self

    @classmethod
    def skipped(cls, reason: str) -> Status:
        """A district the run left out, and why (the ledger's progress state: nothing new, in another run)."""
        return cls(f"skipped: {reason}")

    @classmethod
    def after_guard(cls, action: GuardAction, decided_by: str | None) -> str:
        """A date's status after the guard's action on it."""
        if action in WAITING:
            return cls.HELD
        return cls.TRIMMED if action is GuardAction.TRIM else cls.REJECTED.by(decided_by)

    @classmethod
    def after_decision(cls, decision: Decision, by: str | None) -> str:
        """The held dates' status once a person decided on them (or nobody did in time)."""
        if decision is Decision.PARTLY_APPROVED:
            return cls.TRIMMED
        return {Decision.APPROVED: cls.APPROVED, Decision.REJECTED: cls.REJECTED,
                Decision.NO_DECISION: cls.NO_DECISION}[decision].by(by)


SKIPPED = (Status.NOTHING_NEW, Status.ELSEWHERE)
FAILED = (Status.FAILED_AT_EXTRACT, Status.FAILED_AT_TRANSFORM, Status.FAILED_AT_UPLOAD)


def delivers(status: str) -> bool:
    """Does a date of this status hold the run's rows in Safety Shield (or none to hold)? Uploaded, also as a person
    approved or trimmed it, or without attendance."""
    return status.startswith(Status.UPLOADED) or status == Status.NO_ATTENDANCE


class Posted(StrEnum):
    """Why a date's rows are posted, against what Safety Shield holds (the ledger's digest of the rows last sent)."""

    NEW = "new"  # never delivered
    CHANGED = "changed"
    UNCHANGED = "unchanged"  # not posted


class GuardAction(StrEnum):
    """What the data guard does with a date of a district's file that has suspicious schools."""

    HOLD = "hold"  # ask a person
    WAIT = "wait"  # a person was asked already
    DROP = "drop"  # a person rejected the same data
    TRIM = "trim"  # a person let the same data through but the suspicious schools'


WAITING = (GuardAction.HOLD, GuardAction.WAIT)  # the actions that leave a date waiting for a person


class Decision(StrEnum):
    """A person's decision on a hold, as the ledger records it (none yet: pending)."""

    APPROVED = "approved"
    REJECTED = "rejected"
    PARTLY_APPROVED = "partly approved"
    NO_DECISION = "no decision"  # nobody decided in time: asked again


def plain(value: Any) -> Any:
    """A contract as JSON holds it: dataclasses as dicts, tuples as lists, enums as their strings, a window as text."""
    if isinstance(value, Window):
        return str(value)
    if is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Window:
    """The attendance dates a run syncs: a closed range of days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def __str__(self) -> str:
        return f"{self.start}_{self.end}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def overlaps(self, other: Window) -> bool:
        return self.start <= other.end and other.start <= self.end

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def chunks(self, days: int) -> list[Window]:
        """The window cut into consecutive pieces of at most `days` days."""
        out, start = [], self.start
        while start <= self.end:
            end = min(self.end, start + timedelta(days=days - 1))
            out.append(Window(start, end))
            start = end + timedelta(days=1)
        return out

    @classmethod
    def parse(cls, text: str) -> Window:
        start, _, end = text.partition("_")
        return cls(date.fromisoformat(start), date.fromisoformat(end or start))


def _flag(given: Mapping[str, Any], name: str) -> bool:
    value = given.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RunInputError(f"field {name!r}: must be true or false, not {str(value)[:40]!r}")
    return value


def _day(given: Mapping[str, Any], name: str) -> date | None:
    value = given.get(name)
    if not value:
        return None
    if not isinstance(value, str) or len(value) != 10:  # a run's conf is anyone's: no echo of a huge value
        raise RunInputError(f"field {name!r}: {str(value)[:40]!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RunInputError(f"field {name!r}: {value!r} is not a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class RunOptions:
    """What a run was asked for: a manual run's form (the DAGs' params), or a review run's conf."""

    districts: tuple[str, ...] = ()  # none: every district
    start_date: date | None = None  # a window override (one date alone: that day)
    end_date: date | None = None
    dry_run: bool = False  # build the files from what Clever holds now, upload nothing, page nobody
    force: bool = False  # sync even when Clever's last_attendance_sync has not moved
    reconcile: bool = False  # the daily DAG's: as its nightly run
    hold: str | None = None  # a review run's: the hold it acts on (the guard names it by the run's own id)

    @classmethod
    def parse(cls, given: Mapping[str, Any]) -> RunOptions:
        """The options from a run's params or conf, strictly: a wrong value is refused naming its field; a missing
        one is its default, and keys the DAGs do not take are not read."""
        districts = given.get("districts") or []
        if not isinstance(districts, list) or not all(isinstance(slug, str) for slug in districts):
            raise RunInputError("field 'districts': must be a list of district slugs")
        hold = given.get("hold")
        if hold is not None and not isinstance(hold, str):
            raise RunInputError("field 'hold': must name the run's own hold")
        return cls(districts=tuple(districts), start_date=_day(given, "start_date"), end_date=_day(given, "end_date"),
                   dry_run=_flag(given, "dry_run"), force=_flag(given, "force"), reconcile=_flag(given, "reconcile"),
                   hold=hold)

    @classmethod
    def of(cls, context: Mapping[str, Any]) -> RunOptions:
        """The options of the run a task's context belongs to."""
        return cls.parse(context.get("params") or {})


class _Xcom:
    """A contract that crosses XCom as a plain dict of its fields."""

    def to_xcom(self) -> dict[str, Any]:
        return plain(self)


@dataclass(frozen=True)
class Target(_Xcom):
    """A district the check chose for the run, and its window: one instance of the mapped district group."""

    slug: str
    window: Window

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Target:
        return cls(value["slug"], Window.parse(value["window"]))


@dataclass(frozen=True)
class Skip(_Xcom):
    """A district the check left out of the run: why (nothing new, in another run), with the Clever sync it read or
    the run that has it."""

    reason: str
    window: Window
    sync: str | None = None
    run: str | None = None

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Skip:
        return cls(**{**value, "window": Window.parse(value["window"])})


@dataclass(frozen=True)
class Manifest(_Xcom):
    """What the extract staged for the transform: where, how much, and what it cost (no student data)."""

    folder: str
    window: Window
    raw_files: tuple[str, ...]  # one per chunk of the window
    records: int
    schools: int
    roster: dict[str, int]  # rows per roster table
    last_attendance_sync: str | None  # Clever's, when read
    clever: dict[str, float]  # what the reads cost: requests, retries, waits
    seconds: float
    previous_sync: str | None = None  # the newest sync any delivered date was built from: what counts as new

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Manifest:
        return cls(**{**value, "window": Window.parse(value["window"]), "raw_files": tuple(value["raw_files"])})


@dataclass(frozen=True)
class DayCounts(_Xcom):
    """One attendance date's records: read = delivered + rejected + superseded."""

    read: int = 0
    delivered: int = 0
    rejected: int = 0
    superseded: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    digest: str | None = None  # of the date's CSV rows: none when it has none

    def to_xcom(self) -> dict[str, Any]:
        return {k: v for k, v in plain(self).items() if k != "digest" or v is not None}

    def plus(self, other: DayCounts) -> DayCounts:
        """The counts of both (the digest of either: chunks hold whole dates)."""
        return DayCounts(self.read + other.read, self.delivered + other.delivered, self.rejected + other.rejected,
                         self.superseded + other.superseded,
                         _sum(self.rejected_by_reason, other.rejected_by_reason), other.digest or self.digest)


def _sum(one: dict[str, int], other: dict[str, int]) -> dict[str, int]:
    return {**one, **{key: one.get(key, 0) + n for key, n in other.items()}}


@dataclass(frozen=True)
class Counts(_Xcom):
    """A district's records in a run: read = delivered + rejected + superseded, and per attendance date (a date that
    does not exist counts under "")."""

    read: int = 0
    delivered: int = 0
    rejected: int = 0
    superseded: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    unmapped_excuse_codes: int = 0
    days: dict[str, DayCounts] = field(default_factory=dict)

    def to_xcom(self) -> dict[str, Any]:
        return {**plain(self), "days": {day: counts.to_xcom() for day, counts in self.days.items()}}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Counts:
        return cls(**{**value, "days": {day: DayCounts(**counts) for day, counts in value["days"].items()}})

    def plus(self, other: Counts) -> Counts:
        """The counts of both chunks of a window."""
        days = dict(self.days)
        for day, counts in other.days.items():
            days[day] = days[day].plus(counts) if day in days else counts
        return Counts(self.read + other.read, self.delivered + other.delivered, self.rejected + other.rejected,
                      self.superseded + other.superseded, _sum(self.rejected_by_reason, other.rejected_by_reason),
                      self.unmapped_excuse_codes + other.unmapped_excuse_codes, days)


@dataclass(frozen=True)
class Freshness(_Xcom):
    """When the records a run brings were last modified in Clever (those newer than the previous upload's sync)."""

    records: int = 0
    oldest: str | None = None
    p05: str | None = None
    p50: str | None = None


@dataclass(frozen=True)
class Staged(_Xcom):
    """What the transform staged beside the raw files: the CSV, its rejects, each school's day, the rows' identities,
    with the counts (paths and counts only)."""

    csv_path: str
    rejects_path: str
    school_days_path: str
    identities_path: str
    counts: Counts
    fresh: Freshness
    seconds: float

    def to_xcom(self) -> dict[str, Any]:
        return {**plain(self), "counts": self.counts.to_xcom()}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Staged:
        return cls(**{**value, "counts": Counts.from_xcom(value["counts"]), "fresh": Freshness(**value["fresh"])})


@dataclass(frozen=True)
class HeldDate(_Xcom):
    """What the guard did with one date of a district's file, and why (counts and shares of schools only)."""

    action: GuardAction
    schools: tuple[str, ...]  # the suspicious schools' numbers
    decided_by: str | None  # who decided on the same data before
    lines: tuple[str, ...]  # each suspicious school's day next to its usual

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> HeldDate:
        return cls(GuardAction(value["action"]), tuple(value["schools"]), value["decided_by"], tuple(value["lines"]))


@dataclass(frozen=True)
class Guarded(_Xcom):
    """What the data guard found in a district's file (a dry run: what it would do)."""

    suspicious: tuple[str, ...] = ()  # each suspicious school's day, described
    dates: dict[str, HeldDate] = field(default_factory=dict)  # the dates it acted on
    review: str | None = None  # the review run it asked a person in

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Guarded:
        return cls(tuple(value["suspicious"]), {day: HeldDate.from_xcom(d) for day, d in value["dates"].items()},
                   value["review"])

    @property
    def waiting(self) -> bool:
        """Are some of the dates waiting for a person?"""
        return any(held.action in WAITING for held in self.dates.values())


@dataclass(frozen=True)
class UploadOrder(_Xcom):
    """A file for Safety Shield: where it is, whose it is, and how many of its rows Safety Shield may reject."""

    csv_path: str
    district: str  # the slug
    window: Window
    safety_shield_district_id: str
    safety_shield_conn_id: str
    max_reject_share: float
    rejected: int | None = None  # records the pipeline rejected (the asset event says so)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> UploadOrder:
        return cls(**{**value, "window": Window.parse(value["window"])})


@dataclass(frozen=True)
class Transformed(_Xcom):
    """The transform task's output: the staged files, what the guard found, what is posted and why, and the order
    for the upload."""

    staged: Staged
    guard: Guarded
    mirror: dict[str, Posted]  # per date with rows: new, changed or unchanged
    order: UploadOrder

    def to_xcom(self) -> dict[str, Any]:
        return {**plain(self), "staged": self.staged.to_xcom()}

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Transformed:
        return cls(Staged.from_xcom(value["staged"]), Guarded.from_xcom(value["guard"]),
                   {day: Posted(why) for day, why in value["mirror"].items()}, UploadOrder.from_xcom(value["order"]))


@dataclass(frozen=True)
class Import(_Xcom):
    """One file's import in Safety Shield, in brief: counts, the columns rows were rejected for, a failed file's
    fault; never the row-level messages, which may quote the file's values."""

    upload_id: str
    status: str
    rows_received: int | None = None
    rows_imported: int | None = None
    rows_rejected: int | None = None
    completed_at: str | None = None
    error_columns: dict[str, int] = field(default_factory=dict)
    file_error: str | None = None


@dataclass(frozen=True)
class Delivery(_Xcom):
    """What a district's upload delivered (a dry run: nothing, the file stays in staging)."""

    rows: int  # in the file
    dry_run: bool = False
    imported: int = 0
    rejected: int = 0  # by Safety Shield
    completed_at: str | None = None  # the last import's
    uploads: tuple[Import, ...] = ()
    seconds: float | None = None

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Delivery:
        return cls(**{**value, "uploads": tuple(Import(**u) for u in value["uploads"])})

    @property
    def import_ids(self) -> str | None:
        """The uploads' ids, as the ledger keeps them."""
        return ",".join(u.upload_id for u in self.uploads) or None


@dataclass(frozen=True)
class DecidedUpload(_Xcom):
    """A review's upload: the held rows a person's decision lets through, and how many of each date."""

    order: UploadOrder
    rows_by_date: dict[str, int]

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> DecidedUpload:
        return cls(UploadOrder.from_xcom(value["order"]), value["rows_by_date"])

    @property
    def rows(self) -> int:
        return sum(self.rows_by_date.values())


@dataclass(frozen=True)
class Latency(_Xcom):
    """Seconds from Clever to Safety Shield of a run's new records (p50, p95, max by last_modified), and of the
    district's last_attendance_sync."""

    records: int
    p50: float
    p95: float
    max: float
    sync: float | None


@dataclass(frozen=True)
class DistrictReport(_Xcom):
    """A district's line of the run's report: what happened, counts, Safety Shield's import, seconds per step."""

    district: str
    status: Status
    window: str | None = None
    read: int | None = None
    delivered: int | None = None
    rejected: int | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    superseded: int | None = None
    uploaded: int | None = None  # rows Safety Shield imported
    import_: str | None = None  # its uploads and their status; a dry run: where its files are
    extract_s: float | None = None
    transform_s: float | None = None
    upload_s: float | None = None
    held: dict[str, HeldDate] = field(default_factory=dict)
    mirror: dict[str, Posted] = field(default_factory=dict)
    latency: Latency | None = None

    def to_xcom(self) -> dict[str, Any]:
        return {("import" if key == "import_" else key): value for key, value in plain(self).items()}
