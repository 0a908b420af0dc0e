"""What each task does with its Airflow context: the run's input, the window, the staging folder."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from airflow.sdk import ObjectStoragePath
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from clever_attendance.errors import RunInputError
from clever_attendance.pipeline import config, staging
from clever_attendance.pipeline.window import Window, requested, single_day, trailing
from clever_attendance.settings import DAILY

log = logging.getLogger(__name__)


def _district(slug: str) -> tuple[config.Settings, config.District]:
    settings = config.load()
    return settings, settings.district(slug)


def window(context, settings: config.Settings, district: config.District) -> Window:
    """The run's dates: the manual override, else one date (daily DAG) or today and the lookback (polling)."""
    moment = context.get("logical_date") or context["dag_run"].run_after  # a manual run has no logical date
    override = requested(context["params"], moment.astimezone(ZoneInfo(district.timezone)).date())
    if override:
        return override
    if context["dag"].dag_id == DAILY:
        return single_day(moment, settings.timezone)
    return trailing(moment, district.timezone, district.lookback_days)


def extract(context, slug: str) -> dict:
    from clever_attendance.pipeline.extract import NothingNew, extract

    settings, district = _district(slug)
    params = context["params"]
    unknown = sorted(set(params.get("districts") or ()) - {d.slug for d in settings.districts})
    if unknown:
        raise RunInputError(f"field 'districts': not in {settings.source}: {', '.join(unknown)}")
    if params.get("districts") and slug not in params["districts"]:
        context["ti"].xcom_push(key="skipped", value="not selected")
        raise AirflowSkipException(f"Clever district {slug}: not selected for this run")
    span = window(context, settings, district)
    dag_id = context["dag"].dag_id
    folder = staging.run_folder(dag_id, slug, str(span), context["run_id"])
    receipt = staging.receipt_path(dag_id, slug, str(span))
    try:
        # a dry run previews what Clever holds now, new or not
        manifest = extract(district, span, folder, staging.read_receipt(receipt),
                           bool(params.get("force") or params.get("dry_run")), settings.chunk_days)
    except NothingNew as skip:
        staging.mark_checked(receipt, context["run_id"])
        context["ti"].xcom_push(key="skipped", value="nothing new")
        raise AirflowSkipException(str(skip)) from None
    manifest["previous_sync"] = staging.latest_sync(dag_id, slug)  # what counts as new, for latency
    manifest["receipt_path"] = str(receipt)
    manifest["receipt"] = {"district": slug, "window": str(span), "run_id": context["run_id"],
                           "last_attendance_sync": manifest["last_attendance_sync"]}
    return manifest


def transform(context, slug: str, manifest: dict) -> dict:
    from clever_attendance.pipeline.reshape import reshape

    _, district = _district(slug)
    return reshape(district, manifest)


def report(context, slugs: list[str]) -> list[dict]:
    from airflow.sdk.observability.stats import Stats

    from clever_attendance.alerts import latency_breached, latency_pages
    from clever_attendance.pipeline.report import district_row, render

    settings = config.load()
    ti, dag_run, dag_id = context["ti"], context["dag_run"], context["dag"].dag_id
    rows = []
    for slug in slugs:
        district = settings.district(slug)
        pulled = {step: ti.xcom_pull(task_ids=f"{slug}.{step}") for step in ("extract", "transform", "upload")}
        row = district_row(slug, pulled, ti.xcom_pull(task_ids=f"{slug}.extract", key="skipped"))
        rows.append(row)
        upload = pulled["upload"] or {}
        if upload and not upload.get("dry_run") and not settings.keep_staging:
            staging.remove(ObjectStoragePath(pulled["extract"]["folder"]).parent)  # this and older runs' files
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
    for line in render(rows).splitlines():
        log.info("report | %s", line)
    failed = [f"{row['district']} ({row['status']})" for row in rows if row["status"].startswith("failed")]
    if failed:
        # the report is the run's last task: without this a run with a failed district would look successful
        ti.xcom_push(key="return_value", value=rows)
        raise AirflowFailException(f"Clever attendance did not reach Safety Shield for: {', '.join(failed)}")
    return rows
