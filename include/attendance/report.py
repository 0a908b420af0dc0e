"""The run's report: one row per district, rendered as a fixed-width table for the task log."""

from __future__ import annotations

COLUMNS = ["district", "status", "read", "delivered", "rejected", "superseded", "uploaded", "import",
           "extract_s", "transform_s", "upload_s"]


def district_row(slug: str, pulled: dict, skipped: str | None) -> dict:
    """A district's line from its tasks' XComs: counts, Safety Shield import, seconds per step."""
    extract, transform, upload = pulled["extract"] or {}, pulled["transform"] or {}, pulled["upload"] or {}
    counts = transform.get("counts", {})
    if upload.get("dry_run"):
        status = "dry run"
    elif upload:
        status = "uploaded"
    elif skipped:
        status = "skipped: nothing new"
    elif not extract:
        status = "failed or skipped at extract"
    else:
        status = "failed at " + ("upload" if transform else "transform")
    uploads = upload.get("uploads", [])
    return {
        "district": slug, "status": status, "read": counts.get("read"), "delivered": counts.get("delivered"),
        "rejected": counts.get("rejected"), "rejected_by_reason": counts.get("rejected_by_reason", {}),
        "superseded": counts.get("superseded"), "uploaded": upload.get("imported"),
        "import": ", ".join(f"{u['uploadId']} {u['status']}" for u in uploads) or upload.get("csv_path"),
        "extract_s": extract.get("seconds"), "transform_s": transform.get("seconds"),
        "upload_s": upload.get("seconds"), "window": extract.get("window"),
    }


def render(rows: list[dict]) -> str:
    """A plain-text table, then the reject reasons of each district that has any."""
    cells = [COLUMNS] + [["" if row.get(c) is None else str(row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for row in rows:
        if row["rejected_by_reason"]:
            reasons = ", ".join(f"{k} {v}" for k, v in row["rejected_by_reason"].items())
            lines.append(f"{row['district']} rejected: {reasons}")
    return "\n".join(lines)
