"""Tables kept beside the run folders: `bench parity`'s and `bench capacity`'s.

Each is a property of the adapters, the framework versions and the machine, not of one run, so it lives in the
results root beside the run folders (`<root>/parity-latest.json`, `<root>/capacity-latest.json`); each command
replaces its own. A report shows the ones found in the results root of its runs, with the time they were measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.results import read_json
from frameworks.errors import UserError
from frameworks.protocol import write_json_atomic


@dataclass(frozen=True)
class StoredTable:
    file_name: str
    schema_version: int
    what: str  # as errors name it
    command: str  # what writes it

    def save(self, root: Path, **fields) -> Path:
        """Write FIELDS (their `rows` among them) with the schema version and the time; returns the file's path."""
        path = Path(root) / self.file_name
        write_json_atomic(path, {"schema_version": self.schema_version,
                                 "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields})
        return path

    def load(self, root: Path) -> dict | None:
        """The stored table under ROOT, or None when its command has not written one there."""
        path = Path(root) / self.file_name
        if not path.is_file():
            return None
        document = read_json(path, self.what)
        if document.get("schema_version") != self.schema_version or not isinstance(document.get("rows"), list):
            raise UserError(f"{path}: not a {self.what} this bench reads (schema_version "
                            f"{document.get('schema_version')!r}, expected {self.schema_version}); run "
                            f"`{self.command}` again")
        return document


#: rows: bench.parity.ParityRow; version 2: rows carry their precision, tolerances are per precision
PARITY = StoredTable("parity-latest.json", 2, "parity table", "bench parity")
#: rows: bench.capacity.as_row
CAPACITY = StoredTable("capacity-latest.json", 1, "capacity table", "bench capacity")
