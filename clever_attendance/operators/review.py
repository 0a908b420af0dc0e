"""The data guard's review: a person's decision on a district's held dates, in a run of `clever_attendance_review`
of its own (so that the district's run ends and the next polls go on while a person decides). `HoldDecision` is
Airflow's human-in-the-loop operator: the request waits in Browse → Required Actions, with counts and shares only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Context

from clever_attendance.pipeline.guard import APPROVE, PARTIAL, REJECT

if TYPE_CHECKING:
    from clever_attendance.pipeline.holds import Review


def body(review: Review, district: dict) -> str:
    """What the person reads in Required Actions: the suspicious schools' counts and shares, and the choices."""
    dates = ", ".join(d.date for d in review.dates)
    lines = "\n".join(f"- {line}" for d in review.dates for line in d.lines)
    return (
        f"Clever attendance of **{district['name']}** (slug {district['slug']}, Clever district "
        f"{district['clever_district_id']}, Safety Shield {district['safety_shield_district_id']}) for **{dates}** "
        f"looks wrong next to its schools' last school days, so those dates' {review.rows} rows were not "
        f"uploaded. The rest of the district's attendance was.\n\n{lines}\n\n"
        f"**{APPROVE}** uploads the held rows as they are. **{REJECT}** uploads none of them: a later run asks "
        f"again only if Clever's data for those schools changes. **{PARTIAL}** uploads the other schools' rows "
        f"of those dates.\n\nWith no decision in {review.timeout_hours:g} hours nothing is uploaded, the district's "
        f"team gets a notice, and a later run asks again."
    )


@dataclass(frozen=True)
class Answer:
    """A person's answer to a hold's request, as `HoldDecision` hands it on (Airflow's human-in-the-loop XCom)."""

    chosen: str  # one of the options: APPROVE, REJECT, PARTIAL
    user_id: str | None
    user_name: str | None

    @classmethod
    def from_xcom(cls, value: dict) -> Answer:
        user = value.get("responded_by_user") or {}
        return cls(value["chosen_options"][0], user.get("id"), user.get("name"))

    @property
    def by(self) -> str | None:
        """How the ledger and the log name who decided."""
        return self.user_name or self.user_id


class HoldDecision(HITLOperator):
    """A person's decision on the hold the guard recorded under the run's id; only the district's `reviewers` may
    answer (when it names any); waits `hold_timeout_hours` at most, then fails (HITLTimeoutError): never a silent
    upload."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(subject="Clever attendance held for a person", options=[APPROVE, REJECT, PARTIAL],
                         **kwargs)

    def execute(self, context: Context):
        from clever_attendance.pipeline import config
        from clever_attendance.pipeline.holds import review_of

        review = review_of(context["dag_run"])
        found = config.load().district(review.district)
        district = found.alert_identity()
        self.subject = f"Clever attendance of {district['name']} held: {', '.join(d.date for d in review.dates)}"
        self.body = body(review, district)
        self.response_timeout = timedelta(hours=review.timeout_hours)
        self.assigned_users = [{"id": user, "name": user} for user in found.reviewers] or None
        return super().execute(context)
