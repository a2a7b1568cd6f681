"""`bench parity`'s table, kept on disk so reports can show it: `<results root>/parity-latest.json`.

Parity is a property of the adapters and the framework versions, not of one run, so it lives beside the run
folders rather than inside one; each `bench parity` replaces it. A report shows the one found in the results
root of its runs, with the time it was measured.
"""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.results import read_json
from frameworks.errors import UserError
from frameworks.protocol import write_json_atomic

FILE_NAME = "parity-latest.json"
SCHEMA_VERSION = 2  # 2: rows carry their precision, tolerances are per precision


def save(root: Path, rows: list, *, reference: str, steps: int, tolerances: dict[str, dict[str, float]],
         seed: int) -> Path:
    """Write ROWS (bench.parity.ParityRow) and how they were measured; returns the file's path."""
    path = Path(root) / FILE_NAME
    write_json_atomic(path, {
        "schema_version": SCHEMA_VERSION, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reference": reference, "steps": steps, "tolerances": tolerances, "seed": seed,
        "rows": [asdict(row) for row in rows]})
    return path


def load(root: Path) -> dict | None:
    """The stored parity table under ROOT, or None when `bench parity` has not written one there."""
    path = Path(root) / FILE_NAME
    if not path.is_file():
        return None
    document = read_json(path, "parity table")
    if document.get("schema_version") != SCHEMA_VERSION or not isinstance(document.get("rows"), list):
        raise UserError(f"{path}: not a parity table this bench reads (schema_version "
                        f"{document.get('schema_version')!r}, expected {SCHEMA_VERSION}); run `bench parity` again")
    return document
