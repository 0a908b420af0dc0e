"""What each task does with its Airflow context: the run's input, the window, the staging folder."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from clever_attendance.pipeline import config, mirror, staging
from clever_attendance.pipeline.window import Window
from clever_attendance.settings import GROUP, REVIEW

log = logging.getLogger(__name__)
HOLD_FILES_DAYS = 8  # held rows wait for a person at most the longest hold_timeout_hours (168), then a day


def _district(slug: str) -> tuple[config.Settings, config.District]:
    settings = config.load()
    return settings, settings.district(slug)


def extract(context, slug: str, window: str) -> dict:
    """Stage the district's roster and the window's attendance; the manifest also says where to upload."""
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.ledger import progress
    from clever_attendance.ledger.delivered import last_delivered_sync, read_at
    from clever_attendance.pipeline.check import reconciles
    from clever_attendance.pipeline.extract import NothingNew, extract

    settings, district = _district(slug)
    params, dag_id = context["params"], context["dag"].dag_id
    span = Window.parse(window)
    folder = staging.run_folder(dag_id, slug, window, context["run_id"])
    with ledger_errors(f"reading what Safety Shield holds of district {slug}"), \
            LedgerHook().get_conn().connect() as db:
        known, previous = read_at(db, {slug: span}).get(slug), last_delivered_sync(db, slug)
    try:
        # a dry run previews what Clever holds now, new or not
        manifest = extract(district, span, folder, known, bool(params.get("force") or params.get("dry_run")),
                           settings.chunk_days, settings.reconcile_share if reconciles(context) else 1.0)
    except NothingNew as skip:  # another run delivered it since the check
        with ledger_errors(f"recording district {slug}'s progress"):
            progress.done(LedgerHook().get_conn(), dag_id, context["run_id"], slug, progress.NOTHING_NEW)
        context["ti"].xcom_push(key="skipped", value="nothing new")
        raise AirflowSkipException(str(skip)) from None
    manifest["previous_sync"] = previous  # what counts as new, for latency
    manifest.update(safety_shield_district_id=district.safety_shield_district_id,
                    safety_shield_conn_id=district.safety_shield_conn_id, max_reject_share=district.max_reject_share)
    return manifest


def transform(context, slug: str, window: str, manifest: dict) -> dict:
    """The CSV and its rejects, then the data guard: `upload_path` is what to upload, `guard` what was held and
    why (a dry run: what would be)."""
    from clever_attendance.pipeline.holds import guard, request_review
    from clever_attendance.pipeline.reshape import reshape

    _, district = _district(slug)
    staged = reshape(district, manifest)
    too_many_rejects(district, staged["counts"])
    span = Window.parse(window)
    posting = _mirror(slug, span, staged["counts"].get("days", {}))
    found = guard(district, span, staged, context["dag"].dag_id, context["run_id"],
                  bool(context["params"].get("dry_run")),
                  frozenset(day for day, why in posting.items() if why == mirror.UNCHANGED))
    for line in found["suspicious"]:  # counts and shares of schools: no student data
        log.warning("Clever district %s: suspicious: %s", slug, line)
    for day, what in found["dates"].items():
        log.warning("Clever district %s: %s: %s%s", slug, day, what["action"],
                    " (dry run: nothing held)" if context["params"].get("dry_run") else "")
    if found["review"]:
        started = request_review(found["review"]["run_id"], found["review"]["conf"], slug, context["ti"])
        log.warning("Clever district %s: a person is asked to decide in run %s of %s%s", slug,
                    found["review"]["run_id"], REVIEW, "" if started else " (asked before)")
    return {**staged, "upload_path": found.pop("upload_path"), "guard": found, "mirror": posting}


def too_many_rejects(district: config.District, counts: dict) -> None:
    """Fail before the upload when the pipeline rejected more of the records than the district allows."""
    from clever_attendance.errors import PipelineRejectsError

    read, rejected = counts.get("read", 0), counts.get("rejected", 0)
    if read and rejected / read > district.max_pipeline_reject_share:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.get("rejected_by_reason", {}).items()))
        raise PipelineRejectsError(
            f"Clever district {district.slug}: the pipeline rejected {rejected} of {read} records "
            f"({rejected / read:.1%}, more than max_pipeline_reject_share {district.max_pipeline_reject_share:.1%}): "
            f"{reasons}; nothing was uploaded")


def _mirror(slug: str, window: Window, days: dict[str, dict]) -> dict[str, str]:
    """Per date of the window with rows: new, changed or unchanged against what Safety Shield holds (the ledger)."""
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.ledger.delivered import digests

    with ledger_errors(f"reading what Safety Shield holds of district {slug}"), \
            LedgerHook().get_conn().connect() as db:
        delivered = digests(db, slug, window)
    posting = mirror.compare({day: what["digest"] for day, what in days.items() if what.get("digest")}, delivered)
    log.info("Clever district %s: %s", slug, ", ".join(f"{sum(why == w for why in posting.values())} dates {w}"
                                                       for w in (mirror.NEW, mirror.CHANGED, mirror.UNCHANGED)))
    return posting


def decide_upload(context, decision: dict) -> dict:
    """The review's file to upload, as the person decided, and where to upload it; a decision by anyone but the
    district's reviewers is refused (Airflow enforces them too, as the request's assigned users)."""
    from clever_attendance.pipeline.holds import deliver, review_of

    review = review_of(context["dag_run"])
    _, district = _district(review.district)
    by = (decision.get("responded_by_user") or {}).get("id")
    if district.reviewers and by not in district.reviewers:
        raise AirflowFailException(f"Clever district {review.district}: the hold of review {review.run_id} was "
                                   f"decided by user id {by!r}, who is not among the district's reviewers")
    return {**deliver(review, decision["chosen_options"][0]), "district": review.district, "window": review.window,
            "safety_shield_district_id": district.safety_shield_district_id,
            "safety_shield_conn_id": district.safety_shield_conn_id, "max_reject_share": district.max_reject_share}


def mark_delivered(context) -> None:
    """on_success_callback of a district's upload: the run's deadline alert no longer counts it as unfinished."""
    from clever_attendance.hooks.ledger import LedgerHook
    from clever_attendance.ledger import progress

    progress.done(LedgerHook().get_conn(), context["dag"].dag_id, context["run_id"], context["task"].district_slug)


def who(decision: dict | None) -> str | None:
    user = (decision or {}).get("responded_by_user") or {}
    return user.get("name") or user.get("id")


def record_review(context) -> dict:
    """The decision in the ledger: the holds it settles, and the held dates' outcome under the review's run."""
    from clever_attendance.ledger.tables import COUNTS
    from clever_attendance.pipeline.guard import DECISIONS, TIMED_OUT
    from clever_attendance.pipeline.holds import decide, review_of

    review, ti, dag_run = review_of(context["dag_run"]), context["ti"], context["dag_run"]
    decision = ti.xcom_pull(task_ids="decide")
    delivered, upload = ti.xcom_pull(task_ids="deliver"), ti.xcom_pull(task_ids="upload")
    verdict = DECISIONS[decision["chosen_options"][0]] if decision else TIMED_OUT
    by = who(decision)
    failed = bool(delivered and delivered["rows"] and not upload)
    status = ("failed at upload" if failed else
              {"approved": "uploaded: approved", "partly approved": "uploaded without suspicious schools"}.get(
                  verdict, f"held: {verdict}") + (f" by {by}" if by and verdict != "partly approved" else ""))
    entry = _entry(dag_run)
    for held in review.dates:
        counts = dict(held["counts"])
        if status == "uploaded without suspicious schools":
            left_out = counts["delivered"] - delivered["rows_by_date"].get(held["date"], 0)
            counts.update(delivered=counts["delivered"] - left_out, rejected=counts["rejected"] + left_out,
                          rejected_by_reason={**counts["rejected_by_reason"], "left_out_by_a_person": left_out})
        entry.deliveries.append({
            "district": review.district, "attendance_date": held["date"], "window": review.window,
            "status": status, **{k: counts.get(k) for k in COUNTS},
            # what was decided on these rows stands: the same rows read again are not posted, nor asked about
            "digest": counts.get("digest") if status.startswith("uploaded") else None,
            "rejected_by_reason": json.dumps(counts.get("rejected_by_reason", {})),
            "import_ids": ",".join(u["uploadId"] for u in (upload or {}).get("uploads", [])) or None,
            "completed_at": (upload or {}).get("completedAt")})
    settings = config.load()
    _record(entry, settings.rejects_retention_days)
    decide(review, verdict, by, failed or verdict == "rejected")
    if failed:
        raise AirflowFailException(f"Clever district {review.district}: the held rows were {verdict} by {by} but "
                                   "not uploaded: clear the review's upload task")
    if verdict == TIMED_OUT:  # recorded; and the run shows what happened: nobody decided, nothing went
        raise AirflowFailException(f"Clever district {review.district}: no decision on the held dates in "
                                   f"{review.timeout_hours:g} hours: nothing of them was uploaded")
    log.info("Clever district %s: %s held %s: %s", review.district, ", ".join(d["date"] for d in review.dates),
             verdict + (f" by {by}" if by else ""), status)
    return {"decision": verdict, "decided_by": by, "status": status}


def _mapped(ti, task_id: str, count: int, key: str = "return_value") -> list:
    """One XCom per instance of the district group, in map order (None where an instance pushed none)."""
    return ti.xcom_pull(task_ids=f"{GROUP}.{task_id}", key=key, map_indexes=range(count), default=None) if count else []


def _entry(dag_run):
    """The run's empty ledger entry."""
    from clever_attendance.ledger.record import RunEntry

    return RunEntry(dag_run.dag_id, dag_run.run_id, getattr(dag_run.run_type, "value", str(dag_run.run_type)))


def _record(entry, retention_days: int) -> None:
    """The run in the attendance ledger; a database failure names the ledger, never the rows."""
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.ledger.record import write

    with ledger_errors(f"recording run {entry.run_id}"):
        write(LedgerHook().get_conn(), entry, retention_days)


def report(context, targets: list[dict]) -> list[dict]:
    from airflow.sdk.observability.stats import Stats

    from clever_attendance.alerts import latency_breached, latency_pages
    from clever_attendance.pipeline.check import reconciles
    from clever_attendance.pipeline.report import district_row, render

    settings = config.load()
    ti, dag_run, dag_id = context["ti"], context["dag_run"], context["dag"].dag_id
    pulled = {step: _mapped(ti, step, len(targets)) for step in ("extract", "transform", "upload")}
    late_skips = _mapped(ti, "extract", len(targets), key="skipped")
    skipped = ti.xcom_pull(task_ids="check", key="skipped") or {}
    entry = _entry(dag_run)
    entry.reconciled = reconciles(context)
    rows = []
    for slug, why in skipped.items():
        rows.append(district_row(slug, {step: None for step in pulled}, why["reason"]))
        entry.add(rows[-1], why["window"], {}, sync=why.get("sync"))
    for n, target in enumerate(targets):
        slug = target["slug"]
        district = settings.district(slug)
        mine = {step: values[n] for step, values in pulled.items()}
        row = district_row(slug, mine, late_skips[n])
        rows.append(row)
        staged = mine["transform"] or {}
        entry.add(row, target["window"], mine, staged.get("rejects_path"), staged.get("school_days_path"),
                  identities=staged.get("identities_path"))
        upload = mine["upload"] or {}
        if upload and not upload.get("dry_run") and not settings.keep_staging:
            staging.remove(ObjectStoragePath(mine["extract"]["folder"]).parent)  # this and older runs' files
        for name in ("read", "delivered", "rejected", "superseded"):
            if row[name] is not None:
                Stats.gauge(f"clever_attendance.{name}", row[name], tags={"district": slug, "dag_id": dag_id})
        late = row["latency"]
        if late:
            for name in ("p50", "p95", "max", "sync"):
                if late[name] is not None:
                    Stats.timing(f"clever_attendance.latency_{name}", timedelta(seconds=late[name]),
                                 tags={"district": slug, "dag_id": dag_id})
            if latency_pages(dag_id, dag_run.run_type) and late["p95"] > district.latency_sla_minutes * 60:
                latency_breached(dag_id, dag_run.run_id, district.alert_identity(), late["p95"] / 60,
                                 district.latency_sla_minutes, list(district.alert_emails), settings.alert_from)
    swept = staging.sweep(dag_id, datetime.now(UTC), settings.staging_retention_days,
                          max(settings.rejects_retention_days, HOLD_FILES_DAYS))
    if swept:
        log.info("removed %d staging folders past their retention (staging_retention_days)", swept)
    rows.sort(key=lambda row: row["district"])
    for line in render(rows).splitlines():
        log.info("report | %s", line)
    _record(entry, settings.rejects_retention_days)
    failed = [f"{row['district']} ({row['status']})" for row in rows if row["status"].startswith("failed")]
    if failed:
        # the report is the run's last task: without this a run with a failed district would look successful
        ti.xcom_push(key="return_value", value=rows)
        raise AirflowFailException(f"Clever attendance did not reach Safety Shield for: {', '.join(failed)}")
    return rows
