"""Start the sandbox and show what the pipeline must deliver for a sample school day.

The Airflow pipeline is not built yet (issues 3-5); until it is, the demo shows the sandbox and
its ground truth, so that the command works on a fresh clone.
"""

from __future__ import annotations

from datetime import date, datetime

from sandbox.generator import PRESETS, District
from sandbox.process import running_sandbox
from sandbox.truth import ground_truth

DAY = date(2026, 11, 19)


def main() -> None:
    with running_sandbox("--now", "2026-11-20T23:00:00Z") as info:
        print(f"sandbox: Clever at {info['clever_url']}, Safety Shield at {info['upload_url']}")
        now = datetime.fromisoformat(info["now"].replace("Z", "+00:00"))
        for slug in info["districts"]:
            truth = ground_truth(District(PRESETS[slug]), DAY, DAY, now)
            print(f"{slug}: {truth.read} records read on {DAY}, {len(truth.rows)} to deliver, "
                  f"{len(truth.rejects)} to reject, {truth.superseded} superseded")


if __name__ == "__main__":
    main()
