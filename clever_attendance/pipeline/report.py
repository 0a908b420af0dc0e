"""The run's report: one row per district, rendered as a fixed-width table for the task log."""

from __future__ import annotations

from datetime import datetime

from clever_attendance.pipeline.guard import HELD, WAITING, date_status
from clever_attendance.pipeline.mirror import UNCHANGED

COLUMNS = ["district", "status", "read", "delivered", "rejected", "superseded", "uploaded", "import",
           "extract_s", "transform_s", "upload_s", "latency_min"]


def district_row(slug: str, pulled: dict, skipped: str | None) -> dict:
    """A district's line from its tasks' XComs: counts, what the guard held, Safety Shield import, seconds per
    step."""
    extract, transform, upload = pulled["extract"] or {}, pulled["transform"] or {}, pulled["upload"] or {}
    held = transform.get("guard", {}).get("dates", {})
    counts = transform.get("counts", {})
    if upload.get("dry_run"):
        status = "dry run"
    elif upload and any(what["action"] in WAITING for what in held.values()):
        status = HELD  # the rest of its window was uploaded
    elif upload:
        unchanged = UNCHANGED in transform.get("mirror", {}).values()
        status = "uploaded" if upload.get("rows") else UNCHANGED if unchanged else "no attendance"
    elif skipped:
        status = f"skipped: {skipped}"
    elif not extract:
        status = "failed at extract"
    else:
        status = "failed at " + ("upload" if transform else "transform")
    uploads = upload.get("uploads", [])
    return {
        "district": slug, "status": status, "read": counts.get("read"), "delivered": counts.get("delivered"),
        "rejected": counts.get("rejected"), "rejected_by_reason": counts.get("rejected_by_reason", {}),
        "superseded": counts.get("superseded"), "uploaded": upload.get("imported"),
        "import": ", ".join(f"{u['uploadId']} {u['status']}" for u in uploads) or _preview(upload, transform),
        "extract_s": extract.get("seconds"), "transform_s": transform.get("seconds"),
        "upload_s": upload.get("seconds"), "window": extract.get("window"), "held": held,
        "mirror": transform.get("mirror", {}),
        "latency": latency(upload.get("completedAt"), transform.get("fresh") or {},
                           extract.get("last_attendance_sync")),
    }


def _preview(upload: dict, transform: dict) -> str | None:
    """Where a dry run left its files."""
    if not upload.get("dry_run"):
        return None
    return f"{transform['csv_path']} and {transform['rejects_path'].rsplit('/', 1)[-1]} beside it"


def _seconds(later: str, earlier: str) -> float:
    return round((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds(), 1)


def latency(completed: str | None, fresh: dict, sync: str | None) -> dict | None:
    """Seconds from Clever to Safety Shield: of the new records (p50, p95, max by last_modified) and of
    the district's last_attendance_sync. None when nothing new was imported."""
    if not completed or not fresh.get("records"):
        return None
    return {"records": fresh["records"], "p50": _seconds(completed, fresh["p50"]),
            "p95": _seconds(completed, fresh["p05"]), "max": _seconds(completed, fresh["oldest"]),
            "sync": _seconds(completed, sync) if sync else None}


def _cell(row: dict, column: str) -> str:
    if column == "latency_min":
        late = row.get("latency")
        return "" if not late else "/".join(f"{late[k] / 60:.1f}" for k in ("p50", "p95", "max"))
    return "" if row.get(column) is None else str(row[column])


def render(rows: list[dict]) -> str:
    """A plain-text table (latency_min: p50/p95/max minutes from Clever to Safety Shield of the records
    new in this run), then the reject reasons of each district that has any."""
    cells = [COLUMNS] + [[_cell(row, c) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for row in rows:
        if row["rejected_by_reason"]:
            reasons = ", ".join(f"{k} {v}" for k, v in row["rejected_by_reason"].items())
            lines.append(f"{row['district']} rejected: {reasons}")
    for row in rows:
        posted = {day: why for day, why in sorted((row.get("mirror") or {}).items()) if why != UNCHANGED}
        if posted:
            verb = "would post" if row["status"] == "dry run" else "posted"
            lines.append(f"{row['district']} {verb}: " + ", ".join(f"{day} ({why})" for day, why in posted.items())
                         + f"; {len(row['mirror']) - len(posted)} dates unchanged")
    for row in rows:
        for day, what in (row.get("held") or {}).items():
            said = "the guard would hold" if row["status"] == "dry run" else date_status(what["action"],
                                                                                         what["decided_by"])
            lines += [f"{row['district']} {day}: {said}:", *(f"  {line}" for line in what["lines"])]
    return "\n".join(lines)
