"""`python -m clever_attendance_sandbox serve` starts both stand-ins; `... truth` prints the ground truth."""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import yaml

from clever_attendance_sandbox.faults import CleverFaults, UploadFaults
from clever_attendance_sandbox.generator import PRESETS, District
from clever_attendance_sandbox.server import serve
from clever_attendance_sandbox.truth import HEADER, ground_truth


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _district_settings(path: str, slug: str) -> dict:
    """The code map and student number field the pipeline is configured with for a district."""
    if not Path(path).exists():
        return {}
    config = yaml.safe_load(Path(path).read_text()) or {}
    defaults = config.get("defaults", {})
    district = next((d for d in config.get("districts", []) if d.get("slug") == slug), {})
    return {"code_map": district.get("code_map", []) + defaults.get("code_map", []),
            "student_number_field": district.get("student_number_field",
                                                 defaults.get("student_number_field", "student_number"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clever_attendance_sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="start the Clever and Safety Shield stand-ins (credentials are "
                              "generated, or taken from SANDBOX_CLEVER_CLIENT_ID, SANDBOX_CLEVER_CLIENT_SECRET "
                              "and SANDBOX_UPLOAD_API_KEY)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--clever-port", type=int, default=0, help="0 picks a free port")
    run.add_argument("--upload-port", type=int, default=0, help="0 picks a free port")
    run.add_argument("--districts", default="springfield,shelbyville",
                     help=f"comma-separated presets from {sorted(PRESETS)}; NAME*N is N copies")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--now", type=_moment, help="the Clever clock, ISO-8601 (default: the start time)")
    run.add_argument("--db", help="SQLite file of imported rows (default: a new temporary file)")
    run.add_argument("--clever-faults", default="{}", help="JSON of CleverFaults")
    run.add_argument("--upload-faults", default="{}", help="JSON of UploadFaults")
    run.add_argument("--state-file", help="write URLs and credentials here (mode 0600) once ready")
    truth = commands.add_parser("truth", help="print the rows a correct pipeline delivers")
    truth.add_argument("--district", required=True, choices=sorted(PRESETS))
    truth.add_argument("--start", type=date.fromisoformat, required=True)
    truth.add_argument("--end", type=date.fromisoformat, required=True)
    truth.add_argument("--now", type=_moment, required=True, help="the sandbox clock the run saw")
    truth.add_argument("--seed", type=int, default=42)
    truth.add_argument("--districts-file", default="include/districts.yaml")
    args = parser.parse_args(argv)
    if args.command == "serve":
        db = args.db or tempfile.mkstemp(prefix="safety-shield-", suffix=".sqlite")[1]
        asyncio.run(serve(host=args.host, clever_port=args.clever_port, upload_port=args.upload_port,
                          districts=args.districts.split(","), seed=args.seed, now=args.now, db=db,
                          clever_faults=CleverFaults.model_validate_json(args.clever_faults),
                          upload_faults=UploadFaults.model_validate_json(args.upload_faults),
                          state_file=args.state_file,
                          # fixed credentials for a deployment that names them in advance (docker-compose)
                          client_id=os.environ.get("SANDBOX_CLEVER_CLIENT_ID"),
                          client_secret=os.environ.get("SANDBOX_CLEVER_CLIENT_SECRET"),
                          api_key=os.environ.get("SANDBOX_UPLOAD_API_KEY")))
        return 0
    result = ground_truth(District(PRESETS[args.district], args.seed), args.start, args.end, args.now,
                          **_district_settings(args.districts_file, args.district))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(result.rows)
    reasons = Counter(r["reason"] for r in result.rejects)
    print(f"# read {result.read}, delivered {len(result.rows)}, rejected {len(result.rejects)} "
          f"{dict(reasons)}, superseded {result.superseded}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
