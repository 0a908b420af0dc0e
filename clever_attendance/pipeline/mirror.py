"""Safety Shield as a mirror of Clever: a date's rows are posted when they differ from what Safety Shield holds.

Each attendance date's CSV rows have a digest, built by the transform; the ledger keeps, per district and date,
the digest of the rows last posted (`district_days.delivered_digest`). A date whose digest is the delivered one is
`unchanged` and not posted again; any other date with rows is posted: `new` (never delivered) or `changed`.

Safety Shield's import only inserts and updates, so a record deleted in the SIS stays there. To count those, the
ledger keeps per district and date the identities Safety Shield holds (`delivered_keys`: 48-bit hashes of the CSV
identity, never a student number, about 5 bytes each compressed); a posted date's identities missing from its new
rows are `gone` from Clever.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from clever_attendance.contracts import Posted
from clever_attendance.pipeline.columns import IDENTITY


def digests(rows: pd.DataFrame, date_column: str) -> dict[str, str]:
    """Per value of `date_column`, a digest of its rows whatever their order: SHA-256 of the sorted 64-bit hashes
    of the rows (every column)."""
    if not len(rows):
        return {}
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy()
    out = {}
    for day, where in rows.groupby(date_column, sort=False).indices.items():
        out[day] = hashlib.sha256(np.sort(hashed[where]).tobytes()).hexdigest()
    return out


def compare(built: dict[str, str], delivered: dict[str, str | None]) -> dict[str, Posted]:
    """Per date with rows: new, changed or unchanged against what Safety Shield holds."""
    return {day: Posted.NEW if not delivered.get(day) else Posted.UNCHANGED if delivered[day] == digest
            else Posted.CHANGED for day, digest in built.items()}


def identities(rows: pd.DataFrame, date_column: str) -> dict[str, np.ndarray]:
    """Per value of `date_column`, the sorted 48-bit hashes of its rows' CSV identities (unique: a file holds each
    identity once). 48 bits: two identities of a 50,000-row date share one with odds of about 1 in 200,000."""
    if not len(rows):
        return {}
    hashed = pd.util.hash_pandas_object(rows[IDENTITY], index=False).to_numpy() >> np.uint64(16)
    return {day: np.unique(hashed[where]) for day, where in rows.groupby(date_column, sort=False).indices.items()}
