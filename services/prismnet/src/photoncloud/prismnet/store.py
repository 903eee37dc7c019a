"""PrismNET's store: VPCs, subnets, ports, security groups and allocated addresses in SQLite.

The state machine is the only writer (see photoncloud.common.sqlite for durability). Allocated
addresses are rows keyed by (subnet, address), so the database itself refuses an address given
twice. Addresses are stored as 32 hex digits (their integer value), which sort like the
addresses and fit IPv6.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from photoncloud.common.sqlite import SqliteState

from . import addressing
from .records import NetworkState, Pool, Port, Rule, SecurityGroup, Subnet, Vpc

SCHEMA = """
CREATE TABLE IF NOT EXISTS vpcs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, org_id TEXT NOT NULL, project_id TEXT NOT NULL,
    cidr_block TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    vni INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS vpcs_by_project ON vpcs (org_id, project_id, id);
CREATE TABLE IF NOT EXISTS subnets (
    id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs (id), name TEXT NOT NULL, cidr_block TEXT NOT NULL,
    gateway_ip TEXT NOT NULL, description TEXT NOT NULL, allocation_pools TEXT NOT NULL, dns_servers TEXT NOT NULL,
    ip_version INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS subnets_by_vpc ON subnets (vpc_id, id);
CREATE TABLE IF NOT EXISTS ports (
    id TEXT PRIMARY KEY, subnet_id TEXT NOT NULL REFERENCES subnets (id), vpc_id TEXT NOT NULL, name TEXT NOT NULL,
    ip_address TEXT NOT NULL, mac_address TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, device_type TEXT NOT NULL,
    security_group_ids TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ports_by_subnet ON ports (subnet_id, id);
CREATE INDEX IF NOT EXISTS ports_by_device ON ports (device_id);
CREATE TABLE IF NOT EXISTS addresses (
    subnet_id TEXT NOT NULL, address TEXT NOT NULL, port_id TEXT NOT NULL,  -- port "": the gateway
    PRIMARY KEY (subnet_id, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS security_groups (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, org_id TEXT NOT NULL, project_id TEXT NOT NULL,
    description TEXT NOT NULL, rules TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS groups_by_project ON security_groups (org_id, project_id, id);
CREATE TABLE IF NOT EXISTS port_groups (
    port_id TEXT NOT NULL, group_id TEXT NOT NULL, PRIMARY KEY (group_id, port_id)
) WITHOUT ROWID;
"""
# On a column an older file lacks until migrate() adds it.
VNI_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS vpcs_by_vni ON vpcs (vni)"
# The VXLAN network identifiers VPCs get: 24 bits, the lowest 4096 left to other uses (VLAN-sized
# ids an operator may already carry on the same underlay).
VNI_MIN, VNI_MAX = 4096, 2**24 - 1
VPC_COLUMNS = "id, name, org_id, project_id, cidr_block, description, created_at, updated_at, vni"
# The lowest VNI of [low, high] no VPC holds: low itself, or one above a held VNI (NULL: none is free).
_FREE_VNI = """
SELECT MIN(candidate) FROM (
    SELECT :low AS candidate WHERE NOT EXISTS (SELECT 1 FROM vpcs WHERE vni = :low)
    UNION ALL
    SELECT v.vni + 1 FROM vpcs v WHERE v.vni >= :low AND v.vni < :high
        AND NOT EXISTS (SELECT 1 FROM vpcs w WHERE w.vni = v.vni + 1)
)
"""


def address_key(value: int) -> str:
    """An address's integer value as a sortable key."""
    return f"{value:032x}"


class SqliteNetworkStore(SqliteState):
    """The store on one SQLite file (":memory:" for tests)."""

    SCHEMA = SCHEMA

    def migrate(self) -> None:
        """Bring a file of an older version up to date, in one transaction: VPCs gain a VNI, given
        to the existing ones from VNI_MIN up in order of creation (then id), so that every member
        migrating the same state gives the same VNIs."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if "vni" not in {row[1] for row in self.db.execute("PRAGMA table_info(vpcs)")}:
                self.db.execute("ALTER TABLE vpcs ADD COLUMN vni INTEGER NOT NULL DEFAULT 0")
            unnumbered = [row[0] for row in self.db.execute(
                "SELECT id FROM vpcs WHERE vni = 0 ORDER BY created_at, id")]
            for id in unnumbered:
                vni = self.free_vni(VNI_MIN, VNI_MAX)
                if vni is None:  # more VPCs than VNIs: cannot happen below 16 million VPCs
                    raise RuntimeError("no VNI is left for the VPCs of an older store")
                self.db.execute("UPDATE vpcs SET vni = ? WHERE id = ?", (vni, id))
            self.db.execute(VNI_INDEX)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def restore(self, path: str) -> None:
        """Replace the whole database with the file at path, brought up to date if it is older."""
        super().restore(path)
        self.migrate()  # a file's was on opening; an in-memory copy is made after

    # VPCs

    def vpc(self, id: str) -> Vpc | None:
        """A VPC by id."""
        row = self.db.execute(f"SELECT {VPC_COLUMNS} FROM vpcs WHERE id = ?", (id,)).fetchone()
        return Vpc(*row) if row else None

    def vpcs(self, org_id: str, project_id: str, after: str, limit: int) -> list[Vpc]:
        """VPCs by id after `after`, of one org and/or project when given."""
        rows = self.db.execute(f"SELECT {VPC_COLUMNS} FROM vpcs WHERE (? = '' OR org_id = ?)"
                               " AND (? = '' OR project_id = ?) AND id > ? ORDER BY id LIMIT ?",
                               (org_id, org_id, project_id, project_id, after, limit))
        return [Vpc(*row) for row in rows]

    def save_vpc(self, vpc: Vpc) -> None:
        """Insert or replace a VPC."""
        self.db.execute(f"INSERT OR REPLACE INTO vpcs ({VPC_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        tuple(asdict(vpc).values()))

    def free_vni(self, low: int, high: int) -> int | None:
        """The lowest VNI in [low, high] that no VPC holds (None: every one is held)."""
        if low > high:
            return None
        found: int | None = self.db.execute(_FREE_VNI, {"low": low, "high": high}).fetchone()[0]
        return found

    def delete_vpc(self, id: str) -> None:
        """Delete a VPC (its subnets first)."""
        self.db.execute("DELETE FROM vpcs WHERE id = ?", (id,))

    # Subnets

    def _subnet(self, row: tuple[Any, ...]) -> Subnet:
        (id, vpc_id, name, cidr_block, gateway_ip, description, pools, dns_servers, ip_version, created_at,
         updated_at) = row
        return Subnet(id, vpc_id, name, cidr_block, gateway_ip, description,
                      tuple(Pool(**p) for p in json.loads(pools)), tuple(json.loads(dns_servers)),
                      ip_version, created_at, updated_at)

    def subnet(self, id: str) -> Subnet | None:
        """A subnet by id."""
        row = self.db.execute("SELECT * FROM subnets WHERE id = ?", (id,)).fetchone()
        return self._subnet(row) if row else None

    def subnets(self, vpc_id: str, after: str = "", limit: int = -1) -> list[Subnet]:
        """A VPC's subnets by id after `after`."""
        rows = self.db.execute("SELECT * FROM subnets WHERE vpc_id = ? AND id > ? ORDER BY id LIMIT ?",
                               (vpc_id, after, limit))
        return [self._subnet(row) for row in rows]

    def all_subnets(self) -> list[Subnet]:
        """Every subnet of every VPC, by id."""
        return [self._subnet(row) for row in self.db.execute("SELECT * FROM subnets ORDER BY id")]

    def save_subnet(self, s: Subnet) -> None:
        """Insert or replace a subnet."""
        self.db.execute("INSERT OR REPLACE INTO subnets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (s.id, s.vpc_id, s.name, s.cidr_block, s.gateway_ip, s.description,
                         json.dumps([asdict(p) for p in s.allocation_pools]), json.dumps(list(s.dns_servers)),
                         s.ip_version, s.created_at, s.updated_at))

    def delete_subnet(self, id: str) -> None:
        """Delete a subnet and its reserved addresses (its ports first)."""
        self.db.execute("DELETE FROM addresses WHERE subnet_id = ?", (id,))
        self.db.execute("DELETE FROM subnets WHERE id = ?", (id,))

    # Addresses

    def allocated(self, subnet_id: str, low: int, high: int) -> list[int]:
        """The allocated addresses of a subnet within [low, high], in order."""
        rows = self.db.execute("SELECT address FROM addresses WHERE subnet_id = ? AND address BETWEEN ? AND ?"
                               " ORDER BY address", (subnet_id, address_key(low), address_key(high)))
        return [int(row[0], 16) for row in rows]

    def holder(self, subnet_id: str, address: int) -> str | None:
        """The port holding an address ("" for the gateway), None if free."""
        row = self.db.execute("SELECT port_id FROM addresses WHERE subnet_id = ? AND address = ?",
                              (subnet_id, address_key(address))).fetchone()
        return row[0] if row else None

    def allocate(self, subnet_id: str, address: int, port_id: str) -> None:
        """Mark an address as held (the primary key refuses a second holder)."""
        self.db.execute("INSERT INTO addresses (subnet_id, address, port_id) VALUES (?, ?, ?)",
                        (subnet_id, address_key(address), port_id))

    def free(self, subnet_id: str, address: int) -> None:
        """Release an address."""
        self.db.execute("DELETE FROM addresses WHERE subnet_id = ? AND address = ?", (subnet_id, address_key(address)))

    # Ports

    def _port(self, row: tuple[Any, ...]) -> Port:
        (id, subnet_id, vpc_id, name, ip_address, mac_address, device_id, device_type, groups, description,
         created_at, updated_at) = row
        return Port(id, subnet_id, vpc_id, name, ip_address, mac_address, device_id, device_type,
                    tuple(json.loads(groups)), description, created_at, updated_at)

    def port(self, id: str) -> Port | None:
        """A port by id."""
        row = self.db.execute("SELECT * FROM ports WHERE id = ?", (id,)).fetchone()
        return self._port(row) if row else None

    def ports(self, subnet_id: str, vpc_id: str, device_id: str, after: str, limit: int) -> list[Port]:
        """Ports by id after `after`, filtered by subnet, VPC or device when given."""
        rows = self.db.execute(
            "SELECT * FROM ports WHERE (? = '' OR subnet_id = ?) AND (? = '' OR vpc_id = ?)"
            " AND (? = '' OR device_id = ?) AND id > ? ORDER BY id LIMIT ?",
            (subnet_id, subnet_id, vpc_id, vpc_id, device_id, device_id, after, limit))
        return [self._port(row) for row in rows]

    def count_ports(self, subnet_id: str) -> int:
        """How many ports a subnet has."""
        count: int = self.db.execute("SELECT COUNT(*) FROM ports WHERE subnet_id = ?", (subnet_id,)).fetchone()[0]
        return count

    def port_counts(self) -> dict[str, int]:
        """How many ports each subnet that has any has, by subnet id."""
        return dict(self.db.execute("SELECT subnet_id, COUNT(*) FROM ports GROUP BY subnet_id").fetchall())

    def mac_taken(self, mac: str) -> bool:
        """Whether a port has this MAC address."""
        return self.db.execute("SELECT 1 FROM ports WHERE mac_address = ?", (mac,)).fetchone() is not None

    def save_port(self, p: Port) -> None:
        """Insert or replace a port, and its security group memberships."""
        self.db.execute("INSERT OR REPLACE INTO ports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (p.id, p.subnet_id, p.vpc_id, p.name, p.ip_address, p.mac_address, p.device_id,
                         p.device_type, json.dumps(list(p.security_group_ids)), p.description, p.created_at,
                         p.updated_at))
        self.db.execute("DELETE FROM port_groups WHERE port_id = ?", (p.id,))
        self.db.executemany("INSERT INTO port_groups (port_id, group_id) VALUES (?, ?)",
                            [(p.id, g) for g in p.security_group_ids])

    def delete_port(self, id: str) -> None:
        """Delete a port and its memberships (its address is freed separately)."""
        self.db.execute("DELETE FROM port_groups WHERE port_id = ?", (id,))
        self.db.execute("DELETE FROM ports WHERE id = ?", (id,))

    # Security groups

    def _group(self, row: tuple[Any, ...]) -> SecurityGroup:
        id, name, org_id, project_id, description, rules, created_at, updated_at = row
        return SecurityGroup(id, name, org_id, project_id, description, tuple(Rule(**r) for r in json.loads(rules)),
                             created_at, updated_at)

    def group(self, id: str) -> SecurityGroup | None:
        """A security group by id."""
        row = self.db.execute("SELECT * FROM security_groups WHERE id = ?", (id,)).fetchone()
        return self._group(row) if row else None

    def groups(self, org_id: str, project_id: str, after: str, limit: int) -> list[SecurityGroup]:
        """Security groups by id after `after`, of one org and/or project when given."""
        rows = self.db.execute(
            "SELECT * FROM security_groups WHERE (? = '' OR org_id = ?) AND (? = '' OR project_id = ?)"
            " AND id > ? ORDER BY id LIMIT ?", (org_id, org_id, project_id, project_id, after, limit))
        return [self._group(row) for row in rows]

    def save_group(self, g: SecurityGroup) -> None:
        """Insert or replace a security group."""
        self.db.execute("INSERT OR REPLACE INTO security_groups VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (g.id, g.name, g.org_id, g.project_id, g.description,
                         json.dumps([asdict(r) for r in g.rules]), g.created_at, g.updated_at))

    def delete_group(self, id: str) -> None:
        """Delete a security group."""
        self.db.execute("DELETE FROM security_groups WHERE id = ?", (id,))

    def group_ports(self, group_id: str) -> list[str]:
        """The ports a security group is attached to."""
        return [row[0] for row in self.db.execute("SELECT port_id FROM port_groups WHERE group_id = ?", (group_id,))]

    def groups_referencing(self, group_id: str) -> list[str]:
        """Groups with a rule naming group_id as its remote group."""
        return [row[0] for row in self.db.execute(
            "SELECT id FROM security_groups WHERE id != ? AND rules LIKE ?", (group_id, f'%"{group_id}"%'))]

    # Everything

    def network_state(self) -> NetworkState:
        """Every VPC, subnet (with its capacity and use), port and security group, by id, with the
        applied index: consistent when read where commands apply, or inside reading()."""
        used = self.port_counts()
        subnets = [(s, addressing.capacity(s.allocation_pools, s.gateway_ip), used.get(s.id, 0))
                   for s in self.all_subnets()]
        return NetworkState(self.applied_index(), self.vpcs("", "", "", -1), subnets,
                            self.ports("", "", "", "", -1), self.groups("", "", "", -1))
