"""The districts file: which districts to sync and how, validated with errors that name the field.

The file is untrusted input: it is read strictly (no YAML aliases, no key given twice, no unknown key, no coercion
of a quoted 'false' to true) and every value is bounded, so a hostile file is refused with a short message."""

from __future__ import annotations

import os
import re
import reprlib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from yaml.composer import Composer

from clever_attendance.errors import ConfigError
from clever_attendance.settings import CLEVER_CONN_ID, CLEVER_RETENTION_DAYS, MAX_MAP_LENGTH, SAFETY_SHIELD_CONN_ID

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "include" / "districts.yaml"
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 10  # the shipped file nests 6 deep: the file, districts, a district, its code_map, a rule, a value
MAX_NODES = 250_000  # values: 1,000 districts hold 10,000 (50,000 with rules and schools); 5 MB of them load in 30 s
MAX_MESSAGE = 1000
# every pattern is matched whole (fullmatch): `$` alone would let a trailing newline through
SLUG = re.compile(r"[a-z0-9_]{1,64}")
CLEVER_ID = re.compile(r"[0-9a-f]{24}")
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONN_ID = re.compile(r"[A-Za-z0-9_.-]{1,250}")
USER_ID = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*")
DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]{0,17})")
# control characters, line separators, bidi overrides (text that reads otherwise than it is) and lone surrogates
UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
STATUSES = ("present", "absent", "tardy")
TYPES = ("daily", "section")
PRESENCES = ("Present", "Absent")
NUMBER_FIELDS = ("student_number", "sis_id", "state_id")
DEFAULT_CODE_MAP = [
    {"status": "present", "att_code": ""},
    {"status": "tardy", "att_code": "T"},
    {"status": "absent", "att_code": "A"},
]

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxlevel = 3
_show = _repr.repr  # a value in a message: never the whole of a huge one


def _error(message: str) -> ConfigError:
    return ConfigError(message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "...")


def _first(keys: set) -> Any:
    return min(keys, key=str)  # keys of any YAML type: sorted() would fail on a mix of str and int


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
    reconcile_days: int = CLEVER_RETENTION_DAYS  # the nightly reconciliation compares this many days with Safety Shield
    student_number_field: str = "student_number"
    schools: tuple[str, ...] | None = None  # None: every school Clever shares
    max_reject_share: float = 0.01  # of the rows posted, what Safety Shield may reject (checked after the upload)
    max_pipeline_reject_share: float = 0.1  # of the records read, what the pipeline may reject (checked before it)
    latency_sla_minutes: float = 30.0
    code_map: tuple[CodeRule, ...] = ()  # the district's own rules, then the defaults'
    alert_emails: tuple[str, ...] = ()
    watch: bool = True  # the triggerer watches its last_attendance_sync (when watch_interval_seconds > 0)
    guard: Guard = Guard()
    # Airflow user ids (the auth manager's: the username with the simple one, the numeric id with FAB) who may decide
    # the guard's holds of the district; empty: whoever may edit the review DAG's task instances
    reviewers: tuple[str, ...] = ()

    def alert_identity(self) -> dict[str, str]:
        """How alerts name the district."""
        return {"slug": self.slug, "name": self.name, "clever_district_id": self.clever_district_id,
                "safety_shield_district_id": self.safety_shield_district_id}


@dataclass(frozen=True)
class Broken:
    """A district entry with a mistake: left out of every DAG, named wherever the team looks."""

    name: str  # its slug when that reads as one, else its place in the file (#3)
    error: str  # the message: the file, the district and the field


@dataclass(frozen=True)
class Fleet:
    """The districts file, parsed: its DAG-level settings and the districts in slug order."""

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
    staging_retention_days: int = 3  # the staged files of a failed or dry run are kept this long for diagnosis
    reconcile_share: float = 0.5  # of each Clever token's request rate, what a nightly reconciliation may use
    source: str = field(default="", compare=False)
    broken: tuple[Broken, ...] = ()  # district entries left out for a mistake: the others run

    def left_out(self) -> str | None:
        """What is wrong with the district entries left out, for an import error, a notice or a log; None: none."""
        if not self.broken:
            return None
        return (f"{len(self.broken)} district(s) of {self.source} left out of every DAG until fixed (the others run):"
                + "".join(f"\n- {b.error}" for b in self.broken))

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
            raise _error(f"{self.source}: no district with slug {_show(slug)}") from None


DISTRICT_KEYS = {"slug", "name", "clever_district_id", "safety_shield_district_id", "clever_conn_id",
                 "safety_shield_conn_id", "timezone", "lookback_days", "reconcile_days", "student_number_field",
                 "schools", "max_reject_share", "max_pipeline_reject_share", "latency_sla_minutes", "code_map",
                 "alert_emails", "watch", "guard", "reviewers"}
SETTING_KEYS = {"poll_schedule", "daily_schedule", "poll_deadline_minutes", "daily_deadline_minutes",
                "chunk_days", "keep_staging", "task_retries", "retry_delay_seconds", "alert_from",
                "deadline_alerts", "watch_interval_seconds", "rejects_retention_days", "staging_retention_days",
                "reconcile_share"}
TOP_KEYS = {"defaults", "districts"}
RULE_KEYS = {"att_code", "type", "status", "excuse_code", "presence"}


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that the districts file does not take."""


_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: a thousand districts in a tenth of the time


class _Loader(_Base, Composer):
    """The safe loader, stricter. PyYAML's composer over libyaml's parser, as libyaml's own composer cannot be told
    to refuse an alias: a thousand districts load in 1.5 times libyaml's time, not 10 times."""

    get_single_node = Composer.get_single_node  # not libyaml's, which composes in C

    def __init__(self, stream: str) -> None:
        _Base.__init__(self, stream)
        Composer.__init__(self)
        self.depth = self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:  # an alias bomb: a few hundred bytes, gigabytes expanded
            raise _Refused(problem="YAML anchors and aliases (& and *) are not allowed", problem_mark=event.start_mark)
        self.nodes += 1
        if self.depth == MAX_DEPTH or self.nodes > MAX_NODES:
            too_many = f"nested more than {MAX_DEPTH} deep" if self.depth == MAX_DEPTH else f"over {MAX_NODES} values"
            raise _Refused(problem=too_many, problem_mark=event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        for key, _ in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                raise _Refused(problem="YAML merge keys (<<) are not allowed", problem_mark=key.start_mark)
        mapping = super().construct_mapping(node, deep)
        if len(mapping) < len(node.value):  # a key given twice: YAML keeps the last one, silently
            seen = set()
            for key, _ in node.value:
                value = self.construct_object(key)
                if value in seen:
                    raise _Refused(problem=f"key {_show(value)} is given twice", problem_mark=key.start_mark)
                seen.add(value)
        return mapping

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if not DECIMAL.fullmatch(node.value):  # YAML 1.1 reads 0123 as 83 (octal), 1:30 as 90, 1_000 as 1000
            raise _Refused(problem=f"{_show(node.value)}: write a whole number in decimal (at most 18 digits), "
                                   "or quote it", problem_mark=node.start_mark)
        return int(node.value)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _yaml_error(source: str, exc: Exception) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}: " if mark else ""
    kind = "" if isinstance(exc, _Refused) else "not valid YAML: "
    return _error(f"{source}: {where}{kind}{getattr(exc, 'problem', None) or exc}")


def _as_text(value: Any, pattern: re.Pattern | None = None, limit: int = 200, what: str = "",
             empty: bool = False) -> str:
    """The value as text, else ValueError saying what is wrong with it."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an id or a code written without quotes
    if not isinstance(value, str) or not (empty or value.strip()):
        hint = " (quote it)" if isinstance(value, bool) else ""  # YAML 1.1 reads yes, no, on and off as booleans
        raise ValueError(f"must be a {'' if empty else 'non-empty '}string, not {_show(value)}{hint}")
    if len(value) > limit:
        raise ValueError(f"must be at most {limit} characters, not {len(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise ValueError(f"{_show(value)} {f'is not {what}' if what else f'does not match {pattern.pattern}'}")
    if UNSAFE.search(value):
        raise ValueError(f"{_show(value)} holds a control character or a lone surrogate")
    return value


class _Checker:
    """Reads one mapping, raising ConfigError with where the mistake is."""

    def __init__(self, source: str, where: str, values: dict[str, Any]) -> None:
        self.source, self.where, self.values = source, where, values

    def fail(self, name: Any, problem: str) -> ConfigError:
        return _error(f"{self.source}: {self.where}: field {_show(name)}: {problem}")

    def text(self, name: str, pattern: re.Pattern | None = None, default: str | None = None, limit: int = 200,
             what: str = "") -> str:
        value = self.values.get(name, default)
        if value is None:
            raise self.fail(name, "is required")
        try:
            return _as_text(value, pattern, limit, what)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def texts(self, name: str, kind: str, pattern: re.Pattern, limit: int = 200, what: str = "") -> tuple[str, ...]:
        value = self.values.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list of {kind}, not {_show(value)}")
        out = []
        for n, item in enumerate(value, 1):
            try:
                out.append(_as_text(item, pattern, limit, what))
            except ValueError as exc:
                raise self.fail(name, f"entry {n}: {exc}") from None
        return tuple(out)

    def number(self, name: str, default: float, low: float, high: float, whole: bool = False) -> Any:
        value = self.values.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
            raise self.fail(name, f"must be a {'whole ' if whole else ''}number, not {_show(value)}")
        if not low <= value <= high:
            raise self.fail(name, f"must be between {low} and {high}, not {value}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.values.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {_show(value)}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.values.get(name, default)
        if value not in allowed:
            raise self.fail(name, f"must be one of {', '.join(allowed)}, not {_show(value)}")
        return value

    def timezone(self, name: str, default: str) -> str:
        value = self.text(name, default=default, limit=64)
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder of zones, such as America
            raise self.fail(name, f"unknown time zone {_show(value)}") from None
        return value

    def schools(self, default: Any) -> tuple[str, ...] | None:
        value = self.values.get("schools", default)
        if value is None or value == "all":
            return None
        if not isinstance(value, list) or not value:
            raise self.fail("schools", f"must be 'all' or a list of Clever school ids, not {_show(value)}")
        return self.texts("schools", "Clever school ids", CLEVER_ID)

    def guard(self) -> Guard:
        value = self.values.get("guard")
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise self.fail("guard", f"must be a mapping of the guard's thresholds, not {_show(value)}")
        unknown = set(value) - set(Guard.__dataclass_fields__)
        if unknown:
            raise self.fail("guard", f"{_show(_first(unknown))} is not a threshold of the guard")
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
            unknown = set(rule) - RULE_KEYS
            if unknown:
                raise self.fail("code_map", f"rule {n} has an unknown key {_show(_first(unknown))}")
            for key, allowed in (("type", TYPES), ("status", STATUSES), ("presence", PRESENCES)):
                if key in rule and rule[key] not in allowed:
                    raise self.fail("code_map", f"rule {n}: {key} must be one of {', '.join(allowed)}")
            codes = {}
            for key in ("att_code", "excuse_code"):  # att_code "": the record is uploaded without a code
                try:
                    codes[key] = None if rule.get(key) is None else _as_text(rule[key], None, 64, "", key == "att_code")
                except ValueError as exc:
                    raise self.fail("code_map", f"rule {n}: {key} {exc}") from None
            out.append(CodeRule(att_code=codes["att_code"] or "", type=rule.get("type"), status=rule.get("status"),
                                excuse_code=codes["excuse_code"], presence=rule.get("presence")))
        return tuple(out)


def _inherited(check: _Checker) -> dict[str, Any]:
    """The district settings the defaults may give, read and checked: for the defaults and for each district."""
    return {
        "clever_conn_id": check.text("clever_conn_id", CONN_ID, District.clever_conn_id, 250),
        "safety_shield_conn_id": check.text("safety_shield_conn_id", CONN_ID, District.safety_shield_conn_id, 250),
        "timezone": check.timezone("timezone", District.timezone),
        "lookback_days": check.number("lookback_days", District.lookback_days, 0, 180, whole=True),
        "reconcile_days": check.number("reconcile_days", District.reconcile_days, 1, CLEVER_RETENTION_DAYS, whole=True),
        "student_number_field": check.choice("student_number_field", District.student_number_field, NUMBER_FIELDS),
        "schools": check.schools("all"),
        "max_reject_share": float(check.number("max_reject_share", District.max_reject_share, 0, 1)),
        "max_pipeline_reject_share": float(check.number("max_pipeline_reject_share",
                                                        District.max_pipeline_reject_share, 0, 1)),
        "latency_sla_minutes": float(check.number("latency_sla_minutes", District.latency_sla_minutes, 1, 24 * 60)),
        "alert_emails": check.texts("alert_emails", "e-mail addresses", EMAIL, 254, "an e-mail address"),
        "watch": check.flag("watch", District.watch),
        "guard": check.guard(),
        "reviewers": check.texts("reviewers", "Airflow user ids", USER_ID),
    }


def _guard(defaults: dict[str, Any], raw: dict[str, Any]) -> Any:
    """The guard's thresholds one by one: a district may change one and inherit the others."""
    mine, theirs = raw.get("guard"), defaults.get("guard")
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return {**theirs, **mine}
    return theirs if mine is None else mine


def _district(source: str, n: int, raw: Any, defaults: dict[str, Any], default_rules: tuple[CodeRule, ...]
              ) -> District:
    if not isinstance(raw, dict):
        raise _error(f"{source}: district #{n}: must be a mapping")
    where = f"district {_show(raw['slug'])}" if raw.get("slug") else f"district #{n}"
    check = _Checker(source, where, raw)
    unknown = set(raw) - DISTRICT_KEYS
    if unknown:
        raise check.fail(_first(unknown), "is not a known setting")
    return District(
        slug=check.text("slug", SLUG), name=check.text("name"),
        clever_district_id=check.text("clever_district_id", CLEVER_ID),
        safety_shield_district_id=check.text("safety_shield_district_id", EXTERNAL_ID),
        code_map=check.code_map([]) + default_rules,
        **_inherited(_Checker(source, where, {**defaults, **raw, "guard": _guard(defaults, raw)})),
    )


def parse(text: str, source: str = "districts.yaml") -> Fleet:
    """The districts file, parsed from its text."""
    if len(text) > MAX_FILE_BYTES:
        raise _error(f"{source}: larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader, stricter)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a !!timestamp such as 2026-13-01
        raise _yaml_error(source, exc) from None
    if not isinstance(raw, dict):
        raise _error(f"{source}: needs a non-empty 'districts' list")
    unknown = set(raw) - TOP_KEYS
    if unknown:
        raise _error(f"{source}: field {_show(_first(unknown))}: is not a known setting (only defaults and districts "
                     "are)")
    if not isinstance(raw.get("districts"), list) or not raw["districts"]:
        raise _error(f"{source}: needs a non-empty 'districts' list")
    if len(raw["districts"]) > MAX_MAP_LENGTH:
        raise _error(f"{source}: {len(raw['districts'])} districts, more than the {MAX_MAP_LENGTH} one run may map "
                     "(Airflow's max_map_length as the project sets it)")
    defaults = {} if raw.get("defaults") is None else raw["defaults"]
    if not isinstance(defaults, dict):
        raise _error(f"{source}: defaults: must be a mapping of settings, not {_show(defaults)}")
    unknown = set(defaults) - DISTRICT_KEYS - SETTING_KEYS
    if unknown:
        raise _error(f"{source}: defaults: field {_show(_first(unknown))}: is not a known setting")
    top = _Checker(source, "defaults", defaults)
    _inherited(top)  # a mistake in the defaults is reported there, not in the first district that inherits it
    default_rules = top.code_map(DEFAULT_CODE_MAP)
    inherited = {k: v for k, v in defaults.items() if k in DISTRICT_KEYS}
    districts, broken = _districts(source, raw["districts"], inherited, default_rules)
    if not districts:  # nothing would run: the first mistake is the file's
        raise _error(broken[0].error)
    return Fleet(
        districts=tuple(districts),
        poll_schedule=top.text("poll_schedule", default=Fleet.poll_schedule, limit=100),
        daily_schedule=top.text("daily_schedule", default=Fleet.daily_schedule, limit=100),
        timezone=top.timezone("timezone", Fleet.timezone),
        poll_deadline_minutes=float(top.number("poll_deadline_minutes", Fleet.poll_deadline_minutes, 0.05, 1440)),
        daily_deadline_minutes=float(top.number("daily_deadline_minutes", Fleet.daily_deadline_minutes, 0.05, 1440)),
        chunk_days=top.number("chunk_days", Fleet.chunk_days, 1, 183, whole=True),
        keep_staging=top.flag("keep_staging", Fleet.keep_staging),
        task_retries=top.number("task_retries", Fleet.task_retries, 0, 20, whole=True),
        retry_delay_seconds=float(top.number("retry_delay_seconds", Fleet.retry_delay_seconds, 0, 3600)),
        alert_from=top.text("alert_from", EMAIL, Fleet.alert_from, 254, "an e-mail address"),
        deadline_alerts=top.flag("deadline_alerts", Fleet.deadline_alerts),
        watch_interval_seconds=float(top.number("watch_interval_seconds", Fleet.watch_interval_seconds, 0, 3600)),
        rejects_retention_days=top.number("rejects_retention_days", Fleet.rejects_retention_days, 1, 3650,
                                          whole=True),
        staging_retention_days=top.number("staging_retention_days", Fleet.staging_retention_days, 1, 90,
                                          whole=True),
        reconcile_share=float(top.number("reconcile_share", Fleet.reconcile_share, 0.05, 1)),
        source=source, broken=tuple(broken),
    )


def _districts(source: str, entries: list, inherited: dict[str, Any], default_rules: tuple[CodeRule, ...]
               ) -> tuple[list[District], list[Broken]]:
    """The file's districts, and those left out for a mistake (a slug or id used again: the later entry)."""
    districts, broken = [], []
    for n, raw in enumerate(entries, 1):
        try:
            districts.append(_district(source, n, raw, inherited, default_rules))
        except ConfigError as exc:
            slug = raw.get("slug") if isinstance(raw, dict) else None
            name = slug if isinstance(slug, str) and SLUG.fullmatch(slug) else f"#{n}"
            broken.append(Broken(name, str(exc)))
    kept, seen = [], {name: {} for name in ("slug", "clever_district_id", "safety_shield_district_id")}
    for d in districts:
        twice = next((name for name, first in seen.items() if getattr(d, name) in first), None)
        if twice:
            broken.append(Broken(d.slug if twice != "slug" else f"{d.slug} (again)",
                                 f"{source}: district {d.slug!r}: field {twice!r}: used twice, also by district "
                                 f"{seen[twice][getattr(d, twice)].slug!r}"))
            continue
        for name, first in seen.items():
            first[getattr(d, name)] = d
        kept.append(d)
    return sorted(kept, key=lambda d: d.slug), broken


def load(path: str | os.PathLike | None = None) -> Fleet:
    """The districts file at `path`, else $ATTENDANCE_DISTRICTS_FILE, else include/districts.yaml."""
    path = Path(path or os.environ.get("ATTENDANCE_DISTRICTS_FILE") or DEFAULT_FILE)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # never more: the path may be a device or a huge file
    except OSError as exc:
        raise _error(f"{path}: cannot read the districts file: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise _error(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return _parsed(text, str(path))


@lru_cache(maxsize=4)
def _parsed(text: str, source: str) -> Fleet:
    """`parse`, once per process for the same text: a district's task reads the file when it parses its DAG and
    again in its steps, the board on every page (a parse takes 0.1 s at 1,000 districts)."""
    return parse(text, source)
