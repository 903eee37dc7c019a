"""PlasmaVMC's store: flavors, images and VMs in SQLite.

The state machine is the only writer and calls it on one thread inside `transaction()`; every
commit is fsynced (WAL, synchronous=FULL), so a VM's recorded state survives a crash of the
process. An image's files live beside the database (data_dir/images/<id>/); only their sizes and
digests are stored here.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from photoncloud.common.sqlite import SqliteState

from .records import Flavor, Image, ImageFile, Nic, State, Vm

SCHEMA = """
CREATE TABLE IF NOT EXISTS flavors (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL,
    disk_gib INTEGER NOT NULL, price_per_hour INTEGER NOT NULL, description TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, files TEXT NOT NULL, disk_format TEXT NOT NULL,
    cmdline TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vms (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, org_id TEXT NOT NULL, project_id TEXT NOT NULL, state TEXT NOT NULL,
    flavor_id TEXT NOT NULL, vcpus INTEGER NOT NULL, memory_mib INTEGER NOT NULL, image_id TEXT NOT NULL,
    nics TEXT NOT NULL, price_per_hour INTEGER NOT NULL, reservation_id TEXT NOT NULL, charged INTEGER NOT NULL,
    last_error TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    started_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS vms_by_project ON vms (org_id, project_id, id);
CREATE INDEX IF NOT EXISTS vms_by_image ON vms (image_id);
"""

_FILES = ("kernel", "initrd", "disk")


class SqliteVmStore(SqliteState):
    """The store on one SQLite file (":memory:" for tests)."""

    SCHEMA = SCHEMA

    # Flavors

    def flavor(self, id: str) -> Flavor | None:
        """A flavor by id."""
        row = self.db.execute("SELECT * FROM flavors WHERE id = ?", (id,)).fetchone()
        return Flavor(*row) if row else None

    def flavor_named(self, name: str) -> Flavor | None:
        """A flavor by name."""
        row = self.db.execute("SELECT * FROM flavors WHERE name = ?", (name,)).fetchone()
        return Flavor(*row) if row else None

    def flavors(self, after: str, limit: int) -> list[Flavor]:
        """Flavors by id after `after`."""
        rows = self.db.execute("SELECT * FROM flavors WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        return [Flavor(*row) for row in rows]

    def save_flavor(self, flavor: Flavor) -> None:
        """Insert or replace a flavor."""
        self.db.execute("INSERT OR REPLACE INTO flavors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        tuple(asdict(flavor).values()))

    def delete_flavor(self, id: str) -> None:
        """Delete a flavor."""
        self.db.execute("DELETE FROM flavors WHERE id = ?", (id,))

    # Images

    @staticmethod
    def _image(row: tuple[Any, ...]) -> Image:
        files = json.loads(row[3])
        kernel, initrd, disk = (ImageFile(**files[k]) if files.get(k) else None for k in _FILES)
        return Image(row[0], row[1], row[2], kernel, initrd, disk, *row[4:])

    def image(self, id: str) -> Image | None:
        """An image by id."""
        row = self.db.execute("SELECT * FROM images WHERE id = ?", (id,)).fetchone()
        return self._image(row) if row else None

    def images(self, after: str, limit: int) -> list[Image]:
        """Images by id after `after`."""
        rows = self.db.execute("SELECT * FROM images WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
        return [self._image(row) for row in rows]

    def save_image(self, i: Image) -> None:
        """Insert or replace an image."""
        files = {k: asdict(getattr(i, k)) if getattr(i, k) else None for k in _FILES}
        self.db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (i.id, i.name, i.kind, json.dumps(files), i.disk_format, i.cmdline, i.description,
                         i.created_at))

    def delete_image(self, id: str) -> None:
        """Delete an image's record."""
        self.db.execute("DELETE FROM images WHERE id = ?", (id,))

    def image_users(self, image_id: str) -> list[str]:
        """The VMs that boot an image."""
        return [row[0] for row in self.db.execute("SELECT id FROM vms WHERE image_id = ? ORDER BY id", (image_id,))]

    # VMs

    @staticmethod
    def _vm(row: tuple[Any, ...]) -> Vm:
        id, name, org_id, project_id, state, flavor_id, vcpus, memory_mib, image_id, nics, *rest = row
        return Vm(id, name, org_id, project_id, State(state), flavor_id, vcpus, memory_mib, image_id,
                  tuple(Nic(**n) for n in json.loads(nics)), *rest)

    def vm(self, id: str) -> Vm | None:
        """A VM by id."""
        row = self.db.execute("SELECT * FROM vms WHERE id = ?", (id,)).fetchone()
        return self._vm(row) if row else None

    def vms(self, org_id: str = "", project_id: str = "", state: str = "", after: str = "",
            limit: int = -1) -> list[Vm]:
        """VMs by id after `after`, of one org, project and/or state when given."""
        rows = self.db.execute(
            "SELECT * FROM vms WHERE (? = '' OR org_id = ?) AND (? = '' OR project_id = ?) AND (? = '' OR state = ?)"
            " AND id > ? ORDER BY id LIMIT ?",
            (org_id, org_id, project_id, project_id, state, state, after, limit))
        return [self._vm(row) for row in rows]

    def save_vm(self, v: Vm) -> None:
        """Insert or replace a VM."""
        self.db.execute("INSERT OR REPLACE INTO vms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (v.id, v.name, v.org_id, v.project_id, v.state.value, v.flavor_id, v.vcpus, v.memory_mib,
                         v.image_id, json.dumps([asdict(n) for n in v.nics]), v.price_per_hour, v.reservation_id,
                         v.charged, v.last_error, v.description, v.created_at, v.updated_at, v.started_at))

    def delete_vm(self, id: str) -> None:
        """Delete a VM's record."""
        self.db.execute("DELETE FROM vms WHERE id = ?", (id,))
