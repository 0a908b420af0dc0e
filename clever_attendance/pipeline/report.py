"""The run's report: one row per district, rendered as a fixed-width table for the task log."""

from __future__ import annotations

from datetime import datetime

from clever_attendance.contracts import (
    Delivery,
    DistrictReport,
    Freshness,
    Latency,
    Manifest,
    Posted,
    Status,
    Transformed,
)

COLUMNS = ["district", "status", "read", "delivered", "rejected", "superseded", "uploaded", "import",
           "extract_s", "transform_s", "upload_s", "latency_min"]


def _status(manifest: Manifest | None, transformed: Transformed | None, delivery: Delivery | None,
            skipped: str | None) -> Status:
    if delivery and delivery.dry_run:
        return Status.DRY_RUN
    if delivery and transformed and transformed.guard.waiting:
        return Status.HELD  # the rest of its window was uploaded
    if delivery:
        if delivery.rows:
            return Status.UPLOADED
        unchanged = transformed and Posted.UNCHANGED in transformed.mirror.values()
        return Status.UNCHANGED if unchanged else Status.NO_ATTENDANCE
    if skipped:
        return Status.skipped(skipped)
    if not manifest:
        return Status.FAILED_AT_EXTRACT
    return Status.FAILED_AT_UPLOAD if transformed else Status.FAILED_AT_TRANSFORM


def district_row(slug: str, manifest: Manifest | None, transformed: Transformed | None, delivery: Delivery | None,
                 skipped: str | None) -> DistrictReport:
    """A district's line from what its tasks handed on: counts, what the guard held, Safety Shield's import, seconds
    per step; `skipped`: why its extract left it out, if it did."""
    status = _status(manifest, transformed, delivery, skipped)
    staged = transformed.staged if transformed else None
    counts = staged.counts if staged else None
    uploads = delivery.uploads if delivery else ()
    return DistrictReport(
        district=slug, status=status, window=str(manifest.window) if manifest else None,
        read=counts and counts.read, delivered=counts and counts.delivered, rejected=counts and counts.rejected,
        rejected_by_reason=counts.rejected_by_reason if counts else {}, superseded=counts and counts.superseded,
        uploaded=delivery.imported if delivery and not delivery.dry_run else None,
        import_=", ".join(f"{u.upload_id} {u.status}" for u in uploads) or (
            f"{staged.csv_path} and {staged.rejects_path.rsplit('/', 1)[-1]} beside it"  # where a dry run left them
            if status is Status.DRY_RUN else None),
        extract_s=manifest and manifest.seconds, transform_s=staged and staged.seconds,
        upload_s=delivery and delivery.seconds, held=transformed.guard.dates if transformed else {},
        mirror=transformed.mirror if transformed else {},
        latency=latency(delivery.completed_at if delivery else None, staged.fresh if staged else Freshness(),
                        manifest.last_attendance_sync if manifest else None))


def _seconds(later: str, earlier: str) -> float:
    return round((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds(), 1)


def latency(completed: str | None, fresh: Freshness, sync: str | None) -> Latency | None:
    """Seconds from Clever to Safety Shield: of the new records (p50, p95, max by last_modified) and of
    the district's last_attendance_sync. None when nothing new was imported."""
    if not completed or not fresh.records:
        return None
    return Latency(fresh.records, _seconds(completed, fresh.p50), _seconds(completed, fresh.p05),
                   _seconds(completed, fresh.oldest), _seconds(completed, sync) if sync else None)


def _cell(row: DistrictReport, column: str) -> str:
    if column == "latency_min":
        late = row.latency
        return "" if not late else "/".join(f"{seconds / 60:.1f}" for seconds in (late.p50, late.p95, late.max))
    value = row.import_ if column == "import" else getattr(row, column)
    return "" if value is None else str(value)


def render(rows: list[DistrictReport]) -> str:
    """A plain-text table (latency_min: p50/p95/max minutes from Clever to Safety Shield of the records
    new in this run), then the reject reasons of each district that has any."""
    cells = [COLUMNS] + [[_cell(row, c) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for row in rows:
        if row.rejected_by_reason:
            reasons = ", ".join(f"{k} {v}" for k, v in row.rejected_by_reason.items())
            lines.append(f"{row.district} rejected: {reasons}")
    for row in rows:
        posted = {day: why for day, why in sorted(row.mirror.items()) if why != Posted.UNCHANGED}
        if posted:
            verb = "would post" if row.status is Status.DRY_RUN else "posted"
            lines.append(f"{row.district} {verb}: " + ", ".join(f"{day} ({why})" for day, why in posted.items())
                         + f"; {len(row.mirror) - len(posted)} dates unchanged")
    for row in rows:
        for day, held in row.held.items():
            said = "the guard would hold" if row.status is Status.DRY_RUN else Status.after_guard(held.action,
                                                                                                 held.decided_by)
            lines += [f"{row.district} {day}: {said}:", *(f"  {line}" for line in held.lines)]
    return "\n".join(lines)
