"""PrismNET: VPCs, subnets, ports and security groups."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg


class Net(Service):
    """PrismNET's REST API (port 8087)."""

    def create_vpc(self, name: str, project_id: str, cidr_block: str, **more: Any) -> Json:
        """A VPC of a project over an address range."""
        return self._post("/api/v1/vpcs", {"name": name, "project_id": project_id, "cidr_block": cidr_block, **more})

    def get_vpc(self, vpc_id: str) -> Json:
        """One VPC."""
        return self._get(f"/api/v1/vpcs/{seg(vpc_id)}")

    def vpcs(self, project_id: str | None = None, org_id: str | None = None) -> Iterator[Json]:
        """The VPCs the token sees."""
        return self._pages("/api/v1/vpcs", project_id=project_id, org_id=org_id)

    def delete_vpc(self, vpc_id: str) -> Json:
        """Delete an empty VPC."""
        return self._delete(f"/api/v1/vpcs/{seg(vpc_id)}")

    def create_subnet(self, vpc_id: str, name: str, cidr_block: str, **more: Any) -> Json:
        """A subnet of a VPC."""
        return self._post("/api/v1/subnets", {"vpc_id": vpc_id, "name": name, "cidr_block": cidr_block, **more})

    def get_subnet(self, subnet_id: str) -> Json:
        """One subnet."""
        return self._get(f"/api/v1/subnets/{seg(subnet_id)}")

    def subnets(self, vpc_id: str) -> Iterator[Json]:
        """A VPC's subnets."""
        return self._pages("/api/v1/subnets", vpc_id=vpc_id)

    def delete_subnet(self, subnet_id: str) -> Json:
        """Delete a subnet without ports."""
        return self._delete(f"/api/v1/subnets/{seg(subnet_id)}")

    def create_port(self, subnet_id: str, name: str | None = None, ip_address: str | None = None,
                    security_group_ids: list[str] | None = None, **more: Any) -> Json:
        """A port on a subnet (its address chosen by PrismNET unless given)."""
        return self._post("/api/v1/ports", fields(subnet_id=subnet_id, name=name, ip_address=ip_address,
                                                  security_group_ids=security_group_ids, **more))

    def get_port(self, port_id: str) -> Json:
        """One port."""
        return self._get(f"/api/v1/ports/{seg(port_id)}")

    def ports(self, subnet_id: str | None = None, **params: Any) -> Iterator[Json]:
        """The ports of a subnet (or by device)."""
        return self._pages("/api/v1/ports", subnet_id=subnet_id, **params)

    def delete_port(self, port_id: str) -> Json:
        """Delete a port."""
        return self._delete(f"/api/v1/ports/{seg(port_id)}")

    def create_security_group(self, name: str, project_id: str, **more: Any) -> Json:
        """A security group of a project."""
        return self._post("/api/v1/security-groups", {"name": name, "project_id": project_id, **more})

    def security_groups(self, project_id: str | None = None) -> Iterator[Json]:
        """The security groups the token sees."""
        return self._pages("/api/v1/security-groups", project_id=project_id)

    def delete_security_group(self, security_group_id: str) -> Json:
        """Delete a security group."""
        return self._delete(f"/api/v1/security-groups/{seg(security_group_id)}")

    def add_rule(self, security_group_id: str, **rule: Any) -> Json:
        """A rule of a security group (direction, protocol, port_range_min/max, remote_ip_prefix, ...)."""
        return self._post(f"/api/v1/security-groups/{seg(security_group_id)}/rules", rule)

    def delete_rule(self, security_group_id: str, rule_id: str) -> Json:
        """Delete a rule."""
        return self._delete(f"/api/v1/security-groups/{seg(security_group_id)}/rules/{seg(rule_id)}")
