"""PrismNET: `pcctl vpc`, `subnet`, `port` and `sg` (security groups)."""

from __future__ import annotations

import click

from ..context import output_option, project_option, state

VPC_COLUMNS = [("ID", "id"), ("NAME", "name"), ("CIDR", "cidr_block"), ("PROJECT", "project_id")]
SUBNET_COLUMNS = [("ID", "id"), ("NAME", "name"), ("CIDR", "cidr_block"), ("GATEWAY", "gateway_ip"), ("VPC", "vpc_id")]
PORT_COLUMNS = [("ID", "id"), ("NAME", "name"), ("IP", "ip_address"), ("MAC", "mac_address"), ("STATUS", "status"),
                ("DEVICE", "device_type")]
SG_COLUMNS = [("ID", "id"), ("NAME", "name"), ("PROJECT", "project_id")]


@click.group()
def vpc() -> None:
    """PrismNET's VPCs."""


@vpc.command("create")
@click.argument("name")
@click.option("--cidr", "cidr_block", required=True, help="The VPC's address range (10.0.0.0/16).")
@click.option("--description", default=None)
@project_option
@output_option
def vpc_create(name: str, cidr_block: str, description: str | None, project: str | None) -> None:
    """Create a VPC in a project."""
    st = state()
    more = {"description": description} if description else {}
    st.emit(st.client.net.create_vpc(name, st.project(project), cidr_block, **more))


@vpc.command("ls")
@click.option("-p", "--project", default=None, help="Only this project's.")
@output_option
def vpc_ls(project: str | None) -> None:
    """The VPCs the token sees."""
    state().emit(list(state().client.net.vpcs(project)), VPC_COLUMNS)


@vpc.command("get")
@click.argument("vpc_id")
@output_option
def vpc_get(vpc_id: str) -> None:
    """One VPC."""
    state().emit(state().client.net.get_vpc(vpc_id))


@vpc.command("delete")
@click.argument("vpc_id")
@output_option
def vpc_delete(vpc_id: str) -> None:
    """Delete a VPC that has no subnets left."""
    state().emit(state().client.net.delete_vpc(vpc_id))


@click.group()
def subnet() -> None:
    """PrismNET's subnets."""


@subnet.command("create")
@click.argument("name")
@click.option("--vpc", "vpc_id", required=True)
@click.option("--cidr", "cidr_block", required=True, help="Inside the VPC's range (10.0.1.0/24).")
@click.option("--gateway", "gateway_ip", default=None, help="Default: the range's first address.")
@output_option
def subnet_create(name: str, vpc_id: str, cidr_block: str, gateway_ip: str | None) -> None:
    """Create a subnet of a VPC."""
    more = {"gateway_ip": gateway_ip} if gateway_ip else {}
    state().emit(state().client.net.create_subnet(vpc_id, name, cidr_block, **more))


@subnet.command("ls")
@click.option("--vpc", "vpc_id", required=True)
@output_option
def subnet_ls(vpc_id: str) -> None:
    """A VPC's subnets."""
    state().emit(list(state().client.net.subnets(vpc_id)), SUBNET_COLUMNS)


@subnet.command("get")
@click.argument("subnet_id")
@output_option
def subnet_get(subnet_id: str) -> None:
    """One subnet."""
    state().emit(state().client.net.get_subnet(subnet_id))


@subnet.command("delete")
@click.argument("subnet_id")
@output_option
def subnet_delete(subnet_id: str) -> None:
    """Delete a subnet that has no ports left."""
    state().emit(state().client.net.delete_subnet(subnet_id))


@click.group()
def port() -> None:
    """PrismNET's ports."""


@port.command("create")
@click.option("--subnet", "subnet_id", required=True)
@click.option("--name", default=None)
@click.option("--ip", "ip_address", default=None, help="Default: the subnet's next free address.")
@click.option("--sg", "security_group_ids", multiple=True, help="A security group's ID; repeatable.")
@output_option
def port_create(subnet_id: str, name: str | None, ip_address: str | None, security_group_ids: tuple[str, ...]) -> None:
    """Create a port on a subnet."""
    state().emit(state().client.net.create_port(subnet_id, name, ip_address, list(security_group_ids) or None))


@port.command("ls")
@click.option("--subnet", "subnet_id", default=None)
@output_option
def port_ls(subnet_id: str | None) -> None:
    """The ports (of a subnet)."""
    state().emit(list(state().client.net.ports(subnet_id)), PORT_COLUMNS)


@port.command("get")
@click.argument("port_id")
@output_option
def port_get(port_id: str) -> None:
    """One port."""
    state().emit(state().client.net.get_port(port_id))


@port.command("delete")
@click.argument("port_id")
@output_option
def port_delete(port_id: str) -> None:
    """Delete a port."""
    state().emit(state().client.net.delete_port(port_id))


@click.group()
def sg() -> None:
    """PrismNET's security groups."""


@sg.command("create")
@click.argument("name")
@project_option
@output_option
def sg_create(name: str, project: str | None) -> None:
    """Create a security group in a project."""
    st = state()
    st.emit(st.client.net.create_security_group(name, st.project(project)))


@sg.command("ls")
@click.option("-p", "--project", default=None, help="Only this project's.")
@output_option
def sg_ls(project: str | None) -> None:
    """The security groups the token sees."""
    state().emit(list(state().client.net.security_groups(project)), SG_COLUMNS)


@sg.command("delete")
@click.argument("security_group_id")
@output_option
def sg_delete(security_group_id: str) -> None:
    """Delete a security group."""
    state().emit(state().client.net.delete_security_group(security_group_id))


@sg.command("rule-add")
@click.argument("security_group_id")
@click.option("--direction", type=click.Choice(["INGRESS", "EGRESS"]), default=None, help="Default: INGRESS.")
@click.option("--protocol", default=None, help="TCP, UDP, ICMP or ANY.")
@click.option("--port", "ports", default=None, metavar="MIN[-MAX]", help="A port or a range (TCP and UDP).")
@click.option("--remote-cidr", default=None, help="Where traffic may come from (or go to).")
@click.option("--remote-group", "remote_group_id", default=None, help="Or: the ports of this security group.")
@click.option("--description", default=None)
@output_option
def sg_rule_add(security_group_id: str, direction: str | None, protocol: str | None, ports: str | None,
                remote_cidr: str | None, remote_group_id: str | None, description: str | None) -> None:
    """Add a rule to a security group."""
    rule: dict[str, object] = {k: v for k, v in (("direction", direction), ("protocol", protocol),
                                                 ("remote_cidr", remote_cidr), ("remote_group_id", remote_group_id),
                                                 ("description", description)) if v is not None}
    if ports:
        low, _, high = ports.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise click.BadParameter(f"{ports!r} is not a port or a range such as 8000-8080", param_hint="--port")
        rule["port_range_min"], rule["port_range_max"] = int(low), int(high or low)
    state().emit(state().client.net.add_rule(security_group_id, **rule))


@sg.command("rule-delete")
@click.argument("security_group_id")
@click.argument("rule_id")
@output_option
def sg_rule_delete(security_group_id: str, rule_id: str) -> None:
    """Delete a rule of a security group."""
    state().emit(state().client.net.delete_rule(security_group_id, rule_id))


def register(root: click.Group) -> None:
    """Add vpc, subnet, port and sg to root."""
    for command in (vpc, subnet, port, sg):
        root.add_command(command)
