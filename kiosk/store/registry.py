"""Residents and the passes issued to them."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import List, Optional

from kiosk.store.db import Database

MAX_NAME = 64
MAX_UNIT = 32
MAX_ID = 0xFFFFFFFF  # resident ids and pass serials are 32-bit fields of a signed pass
_SQL_MAX = 2**63 - 1  # the largest integer SQLite stores; larger ones cannot be in the database


class RegistryError(ValueError):
    """A resident could not be added, found or changed; the message says why."""


@dataclass(frozen=True)
class Resident:
    id: int
    name: str
    unit: str
    status: str  # "active" or "revoked"
    created_at: float
    archived_at: Optional[float] = None  # moved out of the everyday list; kept because passes were issued to them

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


@dataclass(frozen=True)
class PassRecord:
    serial: int
    resident_id: int
    issued_at: float
    expires_at: float
    revoked_at: Optional[float]


def _clean(value: str, what: str, limit: int) -> str:
    value = " ".join(str(value).split())
    if not value:
        raise RegistryError("{} must not be empty".format(what))
    if len(value) > limit:
        raise RegistryError("{} is {} characters long; at most {} are allowed".format(what, len(value), limit))
    if any(ord(c) < 32 for c in value):
        raise RegistryError("{} must not contain control characters".format(what))
    return value


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # residents

    def add(self, name: str, unit: str, min_id: int = 1) -> Resident:
        """A new active resident; ``min_id`` keeps the id above ids that must not be reused (a database
        emptied while the revocation list still names its residents)."""
        name = _clean(name, "name", MAX_NAME)
        unit = _clean(unit, "unit", MAX_UNIT)
        rid = self._next_id("residents", "id", min_id)
        self._insert(
            "INSERT INTO residents(id, name, unit, status, created_at) VALUES (?, ?, ?, 'active', ?)",
            (rid, name, unit, time.time()),
        )
        return self.get(rid)

    def update(self, resident_id: int, name: str, unit: str) -> Resident:
        """Change a resident's name and unit, checked like :meth:`add`."""
        name = _clean(name, "name", MAX_NAME)
        unit = _clean(unit, "unit", MAX_UNIT)
        self.get(resident_id)
        self.db.execute("UPDATE residents SET name = ?, unit = ? WHERE id = ?", (name, unit, resident_id))
        return self.get(resident_id)

    def duplicates(self, name: str, unit: str) -> List[Resident]:
        """Residents with this name and unit (spaces normalised as :meth:`add` stores them), archived ones too."""
        name, unit = " ".join(str(name).split()), " ".join(str(unit).split())
        rows = self.db.query("SELECT * FROM residents WHERE name = ? AND unit = ? ORDER BY id", (name, unit))
        return [Resident(**dict(r)) for r in rows]

    def delete(self, resident_id: int) -> Resident:
        """Remove a resident who was never issued a pass (a typing mistake). One with passes is archived
        instead (:meth:`archive`): their passes stay on record, and so do the ids on the revocation list.
        Ids are never handed out again either way (AUTOINCREMENT remembers them)."""
        resident = self.get(resident_id)
        if self.passes_of(resident_id):
            raise RegistryError("resident {} has passes on record: archive them instead of deleting".format(resident_id))
        self.db.execute("DELETE FROM residents WHERE id = ?", (resident_id,))
        return resident

    def archive(self, resident_id: int) -> Resident:
        """Move a revoked resident out of the everyday list (a resident must be revoked first, so that
        archiving never leaves a working pass behind)."""
        resident = self.get(resident_id)
        if resident.active:
            raise RegistryError("resident {} is active: revoke them before archiving".format(resident_id))
        self.db.execute("UPDATE residents SET archived_at = ? WHERE id = ?", (time.time(), resident_id))
        return self.get(resident_id)

    def unarchive(self, resident_id: int) -> Resident:
        self.get(resident_id)
        self.db.execute("UPDATE residents SET archived_at = NULL WHERE id = ?", (resident_id,))
        return self.get(resident_id)

    def get(self, resident_id: int) -> Resident:
        found = self.find(resident_id)
        if found is None:
            raise RegistryError("no resident with id {}".format(resident_id))
        return found

    def find(self, resident_id: int) -> Optional[Resident]:
        if not 1 <= resident_id <= _SQL_MAX:
            return None
        rows = self.db.query("SELECT * FROM residents WHERE id = ?", (resident_id,))
        return Resident(**dict(rows[0])) if rows else None

    def resolve(self, ref: str) -> Resident:
        """A resident by id, or by a name that only one resident has."""
        ref = str(ref).strip()
        if ref.isdigit():
            return self.get(int(ref))
        rows = self.db.query("SELECT * FROM residents WHERE name = ? ORDER BY id", (ref,))
        if not rows:
            raise RegistryError("no resident named {!r}".format(ref))
        if len(rows) > 1:
            ids = ", ".join(str(r["id"]) for r in rows)
            raise RegistryError("{} residents are named {!r}: give the id ({})".format(len(rows), ref, ids))
        return Resident(**dict(rows[0]))

    def list(self, include_revoked: bool = True) -> List[Resident]:
        sql = "SELECT * FROM residents" + ("" if include_revoked else " WHERE status = 'active'") + " ORDER BY id"
        return [Resident(**dict(r)) for r in self.db.query(sql)]

    def revoked_ids(self) -> List[int]:
        """Ids of the residents revoked in this database."""
        return [int(r["id"]) for r in self.db.query("SELECT id FROM residents WHERE status = 'revoked' ORDER BY id")]

    def revoke(self, ref: str) -> Resident:
        resident = self.resolve(ref)
        self.db.execute("UPDATE residents SET status = 'revoked' WHERE id = ?", (resident.id,))
        return self.get(resident.id)

    def reinstate(self, ref: str) -> Resident:
        resident = self.resolve(ref)
        self.db.execute("UPDATE residents SET status = 'active' WHERE id = ?", (resident.id,))
        return self.get(resident.id)

    # passes

    def new_pass(self, resident_id: int, issued_at: float, expires_at: float, min_serial: int = 1) -> PassRecord:
        """Record a pass; its serial is checked to fit before anything is written. ``min_serial`` keeps it
        above serials that must not be reused (revoked passes of a database since emptied)."""
        if expires_at <= issued_at:
            raise RegistryError("a pass must expire after it is issued")
        serial = self._next_id("passes", "serial", min_serial)
        self._insert(
            "INSERT INTO passes(serial, resident_id, issued_at, expires_at) VALUES (?, ?, ?, ?)",
            (serial, resident_id, issued_at, expires_at),
        )
        return self.get_pass(serial)  # type: ignore[return-value]

    def get_pass(self, serial: int) -> Optional[PassRecord]:
        if not 1 <= serial <= _SQL_MAX:
            return None
        rows = self.db.query("SELECT * FROM passes WHERE serial = ?", (serial,))
        return PassRecord(**dict(rows[0])) if rows else None

    def revoke_pass(self, serial: int) -> PassRecord:
        if not 1 <= serial <= MAX_ID:
            raise RegistryError("serial {}: a pass serial is between 1 and {}".format(serial, MAX_ID))
        record = self.get_pass(serial)
        if record is None:
            raise RegistryError("no pass with serial {} in this kiosk's database".format(serial))
        self.db.execute("UPDATE passes SET revoked_at = ? WHERE serial = ?", (time.time(), serial))
        return self.get_pass(serial)  # type: ignore[return-value]

    def passes_of(self, resident_id: int) -> List[PassRecord]:
        rows = self.db.query("SELECT * FROM passes WHERE resident_id = ? ORDER BY serial", (resident_id,))
        return [PassRecord(**dict(r)) for r in rows]

    def revoked_serials(self) -> List[int]:
        """Serials of the passes revoked in this database."""
        return [int(r["serial"]) for r in self.db.query("SELECT serial FROM passes WHERE revoked_at IS NOT NULL ORDER BY serial")]

    # ids

    def _next_id(self, table: str, column: str, floor: int) -> int:
        """The id the next row of ``table`` gets: above every id it ever had (AUTOINCREMENT's memory) and
        at least ``floor``; RegistryError when that no longer fits a pass's 32-bit field."""
        top = self.db.query(
            "SELECT MAX(COALESCE((SELECT MAX({c}) FROM {t}), 0),"
            " COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)) AS top".format(c=column, t=table),
            (table,),
        )[0]["top"]
        next_id = max(int(top) + 1, floor)
        if next_id > MAX_ID:
            raise RegistryError("{} {} would not fit a pass's 32-bit field (at most {})".format(column, next_id, MAX_ID))
        return next_id

    def _insert(self, sql: str, params: tuple) -> None:
        try:
            self.db.execute(sql, params)
        except sqlite3.IntegrityError:  # another process took the same id at the same moment
            raise RegistryError("another record was added at the same moment; try again") from None
