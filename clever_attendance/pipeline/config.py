"""The districts file: which districts to sync and how, validated with errors that name the field."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from clever_attendance.errors import ConfigError
from clever_attendance.settings import CLEVER_CONN_ID, SAFETY_SHIELD_CONN_ID

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "include" / "districts.yaml"
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: a thousand districts in a tenth of the time
SLUG = re.compile(r"^[a-z0-9_]+$")
STATUSES = ("present", "absent", "tardy")
TYPES = ("daily", "section")
PRESENCES = ("Present", "Absent")
NUMBER_FIELDS = ("student_number", "sis_id", "state_id")
DEFAULT_CODE_MAP = [
    {"status": "present", "att_code": ""},
    {"status": "tardy", "att_code": "T"},
    {"status": "absent", "att_code": "A"},
]


@dataclass(frozen=True)
class CodeRule:
    """Maps (type, status, excuse code) to a PowerSchool code; an omitted key matches anything."""

    att_code: str
    type: str | None = None
    status: str | None = None
    excuse_code: str | None = None
    presence: str | None = None


@dataclass(frozen=True)
class Guard:
    """The data guard's thresholds: when a school's day is suspicious next to its own recent school days."""

    enabled: bool = True
    baseline_days: int = 10  # a school's usual: the median of its last this many school days with data
    min_baseline_days: int = 5  # a school with fewer passes, marked `no baseline`
    min_students: int = 10  # a school that usually sees fewer students passes, marked `small school`
    min_students_share: float = 0.5  # records collapsed: fewer students seen than this share of the usual
    absent_factor: float = 3.0  # absent share jumped: above this many times the usual share ...
    absent_points: float = 0.20  # ... and above the usual plus this (or every student absent)
    hold_timeout_hours: float = 4.0  # no decision by then: the district fails, with a notice


@dataclass(frozen=True)
class District:
    slug: str
    name: str
    clever_district_id: str
    safety_shield_district_id: str
    clever_conn_id: str = CLEVER_CONN_ID
    safety_shield_conn_id: str = SAFETY_SHIELD_CONN_ID
    timezone: str = "America/New_York"
    lookback_days: int = 3
    student_number_field: str = "student_number"
    schools: tuple[str, ...] | None = None  # None: every school Clever shares
    max_reject_share: float = 0.01
    latency_sla_minutes: float = 30.0
    code_map: tuple[CodeRule, ...] = ()  # the district's own rules, then the defaults'
    alert_emails: tuple[str, ...] = ()
    watch: bool = True  # the triggerer watches its last_attendance_sync (when watch_interval_seconds > 0)
    guard: Guard = Guard()

    def alert_identity(self) -> dict[str, str]:
        """How alerts name the district."""
        return {"slug": self.slug, "name": self.name, "clever_district_id": self.clever_district_id,
                "safety_shield_district_id": self.safety_shield_district_id}


@dataclass(frozen=True)
class Settings:
    """The whole file: DAG-level settings and the districts in slug order."""

    districts: tuple[District, ...]
    poll_schedule: str = "*/15 6-17 * * 1-5"
    daily_schedule: str = "0 2 * * *"
    timezone: str = "America/New_York"
    poll_deadline_minutes: float = 20.0
    daily_deadline_minutes: float = 120.0
    chunk_days: int = 7
    keep_staging: bool = False
    task_retries: int = 3
    retry_delay_seconds: float = 60.0
    alert_from: str = "clever-attendance@localhost"
    deadline_alerts: bool = True
    watch_interval_seconds: float = 60.0  # 0: no watcher, the polling DAG alone
    rejects_retention_days: int = 30  # the ledger keeps each run's rejects this long
    source: str = field(default="", compare=False)

    def watched(self) -> list[District]:
        """The districts the triggerer watches for event-driven runs."""
        return [d for d in self.districts if d.watch] if self.watch_interval_seconds else []

    @cached_property
    def _by_slug(self) -> dict[str, District]:
        return {d.slug: d for d in self.districts}

    def district(self, slug: str) -> District:
        """The configured district with this slug."""
        try:
            return self._by_slug[slug]
        except KeyError:
            raise ConfigError(f"{self.source}: no district with slug {slug!r}") from None


DISTRICT_KEYS = {"slug", "name", "clever_district_id", "safety_shield_district_id", "clever_conn_id",
                 "safety_shield_conn_id", "timezone", "lookback_days", "student_number_field", "schools",
                 "max_reject_share", "latency_sla_minutes", "code_map", "alert_emails", "watch", "guard"}
SETTING_KEYS = {"poll_schedule", "daily_schedule", "poll_deadline_minutes", "daily_deadline_minutes",
                "chunk_days", "keep_staging", "task_retries", "retry_delay_seconds", "alert_from",
                "deadline_alerts", "watch_interval_seconds", "rejects_retention_days"}


class _Checker:
    """Reads one mapping, raising ConfigError with where the mistake is."""

    def __init__(self, source: str, where: str, values: dict[str, Any]) -> None:
        self.source, self.where, self.values = source, where, values

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}: field {name!r}: {problem}")

    def text(self, name: str, pattern: re.Pattern | None = None, default: str | None = None) -> str:
        value = self.values.get(name, default)
        if value is None:
            raise self.fail(name, "is required")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, not {value!r}")
        if pattern and not pattern.match(value):
            raise self.fail(name, f"{value!r} does not match {pattern.pattern}")
        return value

    def number(self, name: str, default: float, low: float, high: float, whole: bool = False) -> Any:
        value = self.values.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
            raise self.fail(name, f"must be a {'whole ' if whole else ''}number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low} and {high}, not {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {value!r}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.values.get(name, default)
        if value not in allowed:
            raise self.fail(name, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default=default)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(name, f"unknown time zone {value!r}") from None
        return value

    def schools(self, default: Any) -> tuple[str, ...] | None:
        value = self.values.get("schools", default)
        if value in (None, "all"):
            return None
        if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
            raise self.fail("schools", "must be 'all' or a list of Clever school ids")
        return tuple(value)

    def emails(self, name: str) -> tuple[str, ...]:
        value = self.values.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
            raise self.fail(name, "must be a list of e-mail addresses")
        return tuple(value)

    def guard(self) -> Guard:
        value = self.values.get("guard") or {}
        if not isinstance(value, dict):
            raise self.fail("guard", "must be a mapping of the guard's thresholds")
        unknown = set(value) - set(Guard.__dataclass_fields__)
        if unknown:
            raise self.fail("guard", f"{sorted(unknown)[0]!r} is not a threshold of the guard")
        check = _Checker(self.source, f"{self.where}: field 'guard'", value)
        return Guard(
            enabled=check.flag("enabled", Guard.enabled),
            baseline_days=check.number("baseline_days", Guard.baseline_days, 1, 100, whole=True),
            min_baseline_days=check.number("min_baseline_days", Guard.min_baseline_days, 1, 100, whole=True),
            min_students=check.number("min_students", Guard.min_students, 0, 100_000, whole=True),
            min_students_share=float(check.number("min_students_share", Guard.min_students_share, 0, 1)),
            absent_factor=float(check.number("absent_factor", Guard.absent_factor, 1, 100)),
            absent_points=float(check.number("absent_points", Guard.absent_points, 0, 1)),
            hold_timeout_hours=float(check.number("hold_timeout_hours", Guard.hold_timeout_hours, 0.01, 168)),
        )

    def code_map(self, default: list) -> tuple[CodeRule, ...]:
        rules = self.values.get("code_map", default)
        if not isinstance(rules, list):
            raise self.fail("code_map", "must be a list of rules")
        out = []
        for n, rule in enumerate(rules, 1):
            if not isinstance(rule, dict) or "att_code" not in rule:
                raise self.fail("code_map", f"rule {n} needs att_code")
            unknown = set(rule) - {"att_code", "type", "status", "excuse_code", "presence"}
            if unknown:
                raise self.fail("code_map", f"rule {n} has unknown keys {sorted(unknown)}")
            for key, allowed in (("type", TYPES), ("status", STATUSES), ("presence", PRESENCES)):
                if key in rule and rule[key] not in allowed:
                    raise self.fail("code_map", f"rule {n}: {key} must be one of {', '.join(allowed)}")
            att_code = "" if rule["att_code"] is None else str(rule["att_code"])
            out.append(CodeRule(att_code=att_code, type=rule.get("type"), status=rule.get("status"),
                                excuse_code=None if rule.get("excuse_code") is None else str(rule["excuse_code"]),
                                presence=rule.get("presence")))
        return tuple(out)


def _inherited(check: _Checker) -> dict[str, Any]:
    """The district settings the defaults may give, read and checked: for the defaults and for each district."""
    return {
        "clever_conn_id": check.text("clever_conn_id", default=CLEVER_CONN_ID),
        "safety_shield_conn_id": check.text("safety_shield_conn_id", default=SAFETY_SHIELD_CONN_ID),
        "timezone": check.timezone("timezone", "America/New_York"),
        "lookback_days": check.number("lookback_days", 3, 0, 180, whole=True),
        "student_number_field": check.choice("student_number_field", "student_number", NUMBER_FIELDS),
        "schools": check.schools("all"),
        "max_reject_share": float(check.number("max_reject_share", 0.01, 0, 1)),
        "latency_sla_minutes": float(check.number("latency_sla_minutes", 30, 1, 24 * 60)),
        "alert_emails": check.emails("alert_emails"),
        "watch": check.flag("watch", True),
        "guard": check.guard(),
    }


def _guard(defaults: dict[str, Any], raw: dict[str, Any]) -> Any:
    """The guard's thresholds one by one: a district may change one and inherit the others."""
    mine = raw.get("guard")
    return {**(defaults.get("guard") or {}), **mine} if isinstance(mine, dict) else mine or defaults.get("guard")


def _district(source: str, n: int, raw: Any, defaults: dict[str, Any], default_rules: tuple[CodeRule, ...]
              ) -> District:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: district #{n}: must be a mapping")
    where = f"district {raw.get('slug')!r}" if raw.get("slug") else f"district #{n}"
    check = _Checker(source, where, raw)
    unknown = set(raw) - DISTRICT_KEYS
    if unknown:
        raise check.fail(sorted(unknown)[0], "is not a known setting")
    return District(
        slug=check.text("slug", SLUG), name=check.text("name"),
        clever_district_id=check.text("clever_district_id", re.compile(r"^[0-9a-f]{24}$")),
        safety_shield_district_id=check.text("safety_shield_district_id"),
        code_map=check.code_map([]) + default_rules,
        **_inherited(_Checker(source, where, {**defaults, **raw, "guard": _guard(defaults, raw)})),
    )


def parse(text: str, source: str = "districts.yaml") -> Settings:
    """Settings from the file's text."""
    try:
        raw = yaml.load(text, Loader=SafeLoader) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("districts"), list) or not raw["districts"]:
        raise ConfigError(f"{source}: needs a non-empty 'districts' list")
    defaults = raw.get("defaults") or {}
    unknown = set(defaults) - DISTRICT_KEYS - SETTING_KEYS
    if unknown:
        raise ConfigError(f"{source}: defaults: field {sorted(unknown)[0]!r}: is not a known setting")
    top = _Checker(source, "defaults", defaults)
    _inherited(top)  # a mistake in the defaults is reported there, not in the first district that inherits it
    default_rules = top.code_map(DEFAULT_CODE_MAP)
    inherited = {k: v for k, v in defaults.items() if k in DISTRICT_KEYS}
    districts = [_district(source, n, d, inherited, default_rules) for n, d in enumerate(raw["districts"], 1)]
    seen: set[str] = set()
    for d in districts:
        if d.slug in seen:
            raise ConfigError(f"{source}: district {d.slug!r}: field 'slug': used twice")
        seen.add(d.slug)
    return Settings(
        districts=tuple(sorted(districts, key=lambda d: d.slug)),
        poll_schedule=top.text("poll_schedule", default=Settings.poll_schedule),
        daily_schedule=top.text("daily_schedule", default=Settings.daily_schedule),
        timezone=top.timezone("timezone", Settings.timezone),
        poll_deadline_minutes=float(top.number("poll_deadline_minutes", Settings.poll_deadline_minutes, 0.05, 1440)),
        daily_deadline_minutes=float(top.number("daily_deadline_minutes", Settings.daily_deadline_minutes, 0.05, 1440)),
        chunk_days=top.number("chunk_days", Settings.chunk_days, 1, 183, whole=True),
        keep_staging=bool(defaults.get("keep_staging", False)),
        task_retries=top.number("task_retries", Settings.task_retries, 0, 20, whole=True),
        retry_delay_seconds=float(top.number("retry_delay_seconds", Settings.retry_delay_seconds, 0, 3600)),
        alert_from=top.text("alert_from", default=Settings.alert_from),
        deadline_alerts=bool(defaults.get("deadline_alerts", True)),
        watch_interval_seconds=float(top.number("watch_interval_seconds", Settings.watch_interval_seconds, 0, 3600)),
        rejects_retention_days=top.number("rejects_retention_days", Settings.rejects_retention_days, 1, 3650,
                                          whole=True),
        source=source,
    )


def load(path: str | os.PathLike | None = None) -> Settings:
    """The districts file at `path`, else $ATTENDANCE_DISTRICTS_FILE, else include/districts.yaml."""
    path = Path(path or os.environ.get("ATTENDANCE_DISTRICTS_FILE") or DEFAULT_FILE)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the districts file: {exc.strerror}") from None
    return parse(text, str(path))
