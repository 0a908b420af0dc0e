"""Safety Shield as a mirror of Clever: a date's rows are posted when they differ from what Safety Shield holds.

Each attendance date's CSV rows have a digest, built by the transform; the ledger keeps, per district and date,
the digest of the rows last posted (`district_days.delivered_digest`). A date whose digest is the delivered one is
`unchanged` and not posted again; any other date with rows is posted: `new` (never delivered) or `changed`.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

NEW, CHANGED, UNCHANGED = "new", "changed", "unchanged"


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


def compare(built: dict[str, str], delivered: dict[str, str | None]) -> dict[str, str]:
    """Per date with rows: new, changed or unchanged against what Safety Shield holds."""
    return {day: NEW if not delivered.get(day) else UNCHANGED if delivered[day] == digest else CHANGED
            for day, digest in built.items()}
