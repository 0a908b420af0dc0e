"""What each task does with its Airflow context: the run's options, the window, the staging folder. What the tasks hand
each other crosses XCom as the contracts' `to_xcom`, read back with their `from_xcom` here."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from clever_attendance.contracts import (
    FAILED,
    Counts,
    DecidedUpload,
    Decision,
    Delivery,
    DistrictReport,
    Manifest,
    Posted,
    RunOptions,
    Skip,
    Status,
    Target,
    Transformed,
    UploadOrder,
    Window,
    plain,
)
from clever_attendance.pipeline import config, mirror, staging
from clever_attendance.settings import REVIEW, SYNC

log = logging.getLogger(__name__)
HOLD_FILES_DAYS = 8  # held rows wait for a person at most the longest hold_timeout_hours (168), then a day


def _district(slug: str) -> tuple[config.Fleet, config.District]:
    fleet = config.load()
    return fleet, fleet.district(slug)


def prepare(context, slug: str, window: str, step: Callable[[str], AbstractContextManager]) -> UploadOrder:
    """A district's extract then transform, each done once per run while its result is kept in the run's staging
    folder (CleverDistrictSyncOperator says until when): a retry starts again at the step that failed. Each result
    is also the instance's XCom of that name (`manifest`, `transformed`). `step(name)` frames a step that runs.
    The upload order."""
    ti = context["ti"]
    folder = staging.run_folder(context["dag"].dag_id, slug, window, context["run_id"])
    results: dict[str, dict] = {}
    steps = (("manifest", "extract", lambda: extract(context, slug, window, folder)),
             ("transformed", "transform", lambda: transform(context, slug, window, results["manifest"])))
    for name, done_by, run in steps:
        kept = folder / f"_{name}.json"
        if kept.exists():
            results[name] = json.loads(kept.read_text())
            log.info("Clever district %s: %s already done in this run: its kept result is used", slug, done_by)
        else:
            with step(done_by):
                results[name] = run()
            with staging.open_private(kept, "w") as f:
                json.dump(results[name], f)
        ti.xcom_push(key=name, value=results[name])
    return Transformed.from_xcom(results["transformed"]).order


def forget_steps(context, slug: str, window: str) -> None:
    """The district's kept step results go: its next try starts with the extract."""
    folder = staging.run_folder(context["dag"].dag_id, slug, window, context["run_id"])
    for name in ("manifest", "transformed"):
        (folder / f"_{name}.json").unlink(missing_ok=True)


def extract(context, slug: str, window: str, folder: ObjectStoragePath) -> dict:
    """Stage the district's roster and the window's attendance in the run's `folder`: the `Manifest`."""
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.ledger import progress
    from clever_attendance.ledger.delivered import last_delivered_sync, read_at
    from clever_attendance.pipeline.check import reconciles
    from clever_attendance.pipeline.extract_step import NothingNew, extract

    fleet, district = _district(slug)
    options, dag_id = RunOptions.of(context), context["dag"].dag_id
    span = Window.parse(window)
    with ledger_errors(f"reading what Safety Shield holds of district {slug}"), \
            LedgerHook().get_conn().connect() as db:
        known, previous = read_at(db, {slug: span}).get(slug), last_delivered_sync(db, slug)
    try:
        # a dry run previews what Clever holds now, new or not
        manifest = extract(district, span, folder, known, options.force or options.dry_run, fleet.chunk_days,
                           fleet.reconcile_share if reconciles(context, options) else 1.0)
    except NothingNew as skip:  # another run delivered it since the check
        with ledger_errors(f"recording district {slug}'s progress"):
            progress.done(LedgerHook().get_conn(), dag_id, context["run_id"], slug, progress.NOTHING_NEW)
        context["ti"].xcom_push(key="skipped", value=progress.NOTHING_NEW)
        raise AirflowSkipException(str(skip)) from None
    return replace(manifest, previous_sync=previous).to_xcom()  # what counts as new, for latency


def transform(context, slug: str, window: str, manifest: dict) -> dict:
    """The CSV and its rejects, then the data guard: the `Transformed` (its order uploads what was not held; a dry
    run: says what would be held)."""
    from clever_attendance.pipeline.holds import guard, request_review
    from clever_attendance.pipeline.transform_step import transform_staged

    _, district = _district(slug)
    options, span = RunOptions.of(context), Window.parse(window)
    staged = transform_staged(district, Manifest.from_xcom(manifest))
    too_many_rejects(district, staged.counts)
    posting = _mirror(slug, span, staged.counts)
    upload_path, found = guard(district, span, staged, context["dag"].dag_id, context["run_id"], options.dry_run,
                               frozenset(day for day, why in posting.items() if why is Posted.UNCHANGED))
    for line in found.suspicious:  # counts and shares of schools: no student data
        log.warning("Clever district %s: suspicious: %s", slug, line)
    for day, held in found.dates.items():
        log.warning("Clever district %s: %s: %s%s", slug, day, held.action,
                    " (dry run: nothing held)" if options.dry_run else "")
    if found.review:
        started = request_review(found.review, slug, context["ti"])
        log.warning("Clever district %s: a person is asked to decide in run %s of %s%s", slug,
                    found.review, REVIEW, "" if started else " (asked before)")
    order = UploadOrder(upload_path, slug, span, district.safety_shield_district_id, district.safety_shield_conn_id,
                        district.max_reject_share, staged.counts.rejected)
    return Transformed(staged, found, posting, order).to_xcom()


def too_many_rejects(district: config.District, counts: Counts) -> None:
    """Fail before the upload when the pipeline rejected more of the records than the district allows."""
    from clever_attendance.errors import PipelineRejectsError

    read, rejected = counts.read, counts.rejected
    if read and rejected / read > district.max_pipeline_reject_share:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(counts.rejected_by_reason.items()))
        raise PipelineRejectsError(
            f"Clever district {district.slug}: the pipeline rejected {rejected} of {read} records "
            f"({rejected / read:.1%}, more than max_pipeline_reject_share {district.max_pipeline_reject_share:.1%}): "
            f"{reasons}; nothing was uploaded")


def _mirror(slug: str, window: Window, counts: Counts) -> dict[str, Posted]:
    """Per date of the window with rows: new, changed or unchanged against what Safety Shield holds (the ledger)."""
    from clever_attendance.hooks.ledger import LedgerHook, ledger_errors
    from clever_attendance.ledger.delivered import digests

    with ledger_errors(f"reading what Safety Shield holds of district {slug}"), \
            LedgerHook().get_conn().connect() as db:
        delivered = digests(db, slug, window)
    posting = mirror.compare({day: what.digest for day, what in counts.days.items() if what.digest}, delivered)
    log.info("Clever district %s: %s", slug, ", ".join(f"{sum(why is w for why in posting.values())} dates {w}"
                                                       for w in Posted))
    return posting


def decide_upload(context, decision: dict) -> dict:
    """The review's `DecidedUpload`: the file to upload as the person decided, and where to upload it; a decision by
    anyone but the district's reviewers is refused (Airflow enforces them too, as the request's assigned users)."""
    from clever_attendance.operators.review import Answer
    from clever_attendance.pipeline.holds import deliver, review_of

    review, answer = review_of(context["dag_run"]), Answer.from_xcom(decision)
    _, district = _district(review.district)
    if district.reviewers and answer.user_id not in district.reviewers:
        raise AirflowFailException(f"Clever district {review.district}: the hold of review {review.run_id} was "
                                   f"decided by user id {answer.user_id!r}, who is not among the district's reviewers")
    path, rows_by_date = deliver(review, answer.chosen)
    order = UploadOrder(path, review.district, review.window, district.safety_shield_district_id,
                        district.safety_shield_conn_id, district.max_reject_share)
    return DecidedUpload(order, rows_by_date).to_xcom()


def mark_delivered(context) -> None:
    """on_success_callback of a district's upload: the run's deadline alert no longer counts it as unfinished."""
    from clever_attendance.hooks.ledger import LedgerHook
    from clever_attendance.ledger import progress

    progress.done(LedgerHook().get_conn(), context["dag"].dag_id, context["run_id"], context["task"].district_slug)


def record_review(context) -> dict:
    """The decision in the ledger: the holds it settles, and the held dates' outcome under the review's run."""
    from clever_attendance.ledger.tables import COUNTS
    from clever_attendance.operators.review import Answer
    from clever_attendance.pipeline.guard import DECISIONS
    from clever_attendance.pipeline.holds import decide, review_of

    review, ti, dag_run = review_of(context["dag_run"]), context["ti"], context["dag_run"]
    answer, decided, delivered = (ti.xcom_pull(task_ids=task) for task in ("decide", "deliver", "upload"))
    answer = answer and Answer.from_xcom(answer)
    decided, delivery = decided and DecidedUpload.from_xcom(decided), delivered and Delivery.from_xcom(delivered)
    verdict = DECISIONS[answer.chosen] if answer else Decision.NO_DECISION
    by = answer.by if answer else None
    failed = bool(decided and decided.rows and not delivery)
    status = Status.FAILED_AT_UPLOAD if failed else Status.after_decision(verdict, by)
    entry = _entry(dag_run)
    for held in review.dates:
        counts = held.counts
        if status == Status.TRIMMED:
            left_out = counts.delivered - decided.rows_by_date.get(held.date, 0)
            counts = replace(counts, delivered=counts.delivered - left_out, rejected=counts.rejected + left_out,
                             rejected_by_reason={**counts.rejected_by_reason, "left_out_by_a_person": left_out})
        entry.deliveries.append({
            "district": review.district, "attendance_date": held.date, "window": str(review.window),
            "status": status, **{k: getattr(counts, k) for k in COUNTS},
            # what was decided on these rows stands: the same rows read again are not posted, nor asked about
            "digest": counts.digest if status.startswith(Status.UPLOADED) else None,
            "rejected_by_reason": json.dumps(counts.rejected_by_reason),
            "import_ids": delivery.import_ids if delivery else None,
            "completed_at": delivery.completed_at if delivery else None})
    fleet = config.load()
    _record(entry, fleet.rejects_retention_days)
    decide(review, verdict, by, failed or verdict is Decision.REJECTED)
    if failed:
        raise AirflowFailException(f"Clever district {review.district}: the held rows were {verdict} by {by} but "
                                   "not uploaded: clear the review's upload task")
    if verdict is Decision.NO_DECISION:  # recorded; and the run shows what happened: nobody decided, nothing went
        raise AirflowFailException(f"Clever district {review.district}: no decision on the held dates in "
                                   f"{review.timeout_hours:g} hours: nothing of them was uploaded")
    log.info("Clever district %s: %s held %s: %s", review.district, ", ".join(d.date for d in review.dates),
             verdict + (f" by {by}" if by else ""), status)
    return plain({"decision": verdict, "decided_by": by, "status": status})


def _mapped(ti, count: int, key: str = "return_value") -> list:
    """One XCom of every district's instance, in map order (None where an instance pushed none)."""
    return ti.xcom_pull(task_ids=SYNC, key=key, map_indexes=range(count), default=None) if count else []


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
    """One table for the run (a `DistrictReport` per district), in the log, the ledger and XCom; metrics."""
    from airflow.sdk.observability.stats import Stats

    from clever_attendance.alerts import latency_breached, latency_pages
    from clever_attendance.pipeline.check import reconciles
    from clever_attendance.pipeline.report import district_row, render

    fleet, options = config.load(), RunOptions.of(context)
    ti, dag_run, dag_id = context["ti"], context["dag_run"], context["dag"].dag_id
    chosen = [Target.from_xcom(target) for target in targets]
    manifests = [m and Manifest.from_xcom(m) for m in _mapped(ti, len(chosen), "manifest")]
    transformed = [t and Transformed.from_xcom(t) for t in _mapped(ti, len(chosen), "transformed")]
    deliveries = [d and Delivery.from_xcom(d) for d in _mapped(ti, len(chosen))]
    late_skips = _mapped(ti, len(chosen), "skipped")
    skipped = ti.xcom_pull(task_ids="check", key="skipped") or {}
    entry = _entry(dag_run)
    entry.reconciled = reconciles(context, options)
    rows = []
    for slug, given in skipped.items():
        skip = Skip.from_xcom(given)
        rows.append(district_row(slug, None, None, None, skip.reason))
        entry.add(rows[-1], skip.window, sync=skip.sync)
    for target, manifest, done, delivery, late_skip in zip(chosen, manifests, transformed, deliveries, late_skips,
                                                           strict=True):
        district = fleet.district(target.slug)
        row = district_row(target.slug, manifest, done, delivery, late_skip)
        rows.append(row)
        _add(entry, row, target.window, manifest, done, delivery)
        if delivery and not delivery.dry_run and not fleet.keep_staging:
            staging.remove(ObjectStoragePath(manifest.folder).parent)  # this and older runs' files
        tags = {"district": target.slug, "dag_id": dag_id}
        for name in ("read", "delivered", "rejected", "superseded"):
            if getattr(row, name) is not None:
                Stats.gauge(f"clever_attendance.{name}", getattr(row, name), tags=tags)
        late = row.latency
        if late:
            for name in ("p50", "p95", "max", "sync"):
                if getattr(late, name) is not None:
                    Stats.timing(f"clever_attendance.latency_{name}", timedelta(seconds=getattr(late, name)), tags=tags)
            if latency_pages(dag_id, dag_run.run_type) and late.p95 > district.latency_sla_minutes * 60:
                latency_breached(dag_id, dag_run.run_id, district.alert_identity(), late.p95 / 60,
                                 district.latency_sla_minutes, list(district.alert_emails), fleet.alert_from)
    swept = staging.sweep(dag_id, datetime.now(UTC), fleet.staging_retention_days,
                          max(fleet.rejects_retention_days, HOLD_FILES_DAYS))
    if swept:
        log.info("removed %d staging folders past their retention (staging_retention_days)", swept)
    rows.sort(key=lambda row: row.district)
    for line in render(rows).splitlines():
        log.info("report | %s", line)
    _record(entry, fleet.rejects_retention_days)
    reported = [row.to_xcom() for row in rows]
    failed = [f"{row.district} ({row.status})" for row in rows if row.status in FAILED]
    if failed:
        # the report is the run's last task: without this a run with a failed district would look successful
        ti.xcom_push(key="return_value", value=reported)
        raise AirflowFailException(f"Clever attendance did not reach Safety Shield for: {', '.join(failed)}")
    return reported


def _add(entry, row: DistrictReport, window: Window, manifest: Manifest | None, transformed: Transformed | None,
         delivery: Delivery | None) -> None:
    """A district in the run's ledger entry, with what its transform staged: the rejected records, each school's
    day, the rows' identities."""
    import numpy as np
    import pandas as pd

    if not transformed:
        entry.add(row, window, manifest, transformed, delivery)
        return
    staged = transformed.staged
    rejected = pd.read_csv(staged.rejects_path, dtype=str, keep_default_na=False)
    school_days = pd.read_csv(staged.school_days_path, dtype={"school_id": str, "school_number": str,
                                                              "attendance_date": str}, keep_default_na=False)
    with ObjectStoragePath(staged.identities_path).open("rb") as f, np.load(f) as identities:
        entry.add(row, window, manifest, transformed, delivery, rejected=rejected, school_days=school_days,
                  identities=identities)
