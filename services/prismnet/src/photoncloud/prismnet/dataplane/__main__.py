"""`python -m photoncloud.prismnet.dataplane`: run the dataplane agent on this host (as root)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import sys
from pathlib import Path

from photoncloud.common import tls
from photoncloud.common.credentials import Tokens
from photoncloud.common.logs import setup_logging
from photoncloud.common.netdev import DEFAULT_PREFIX, DeviceNames
from photoncloud.common.signals import on_stop_signals

from .agent import Agent, Dataplane, StateSource, unsupported

log = logging.getLogger("photoncloud.prismnet.dataplane")
ENV = "PRISMNET_DATAPLANE_"
EXIT_UNSUPPORTED = 2


def parse(argv: list[str], environ: dict[str, str] | None = None) -> argparse.Namespace:
    """The agent's flags; each defaults to PRISMNET_DATAPLANE_<FLAG> from the environment."""
    env = os.environ if environ is None else environ

    def default(name: str, fallback: str) -> str:
        return env.get(ENV + name.upper(), fallback)

    p = argparse.ArgumentParser(prog="python -m photoncloud.prismnet.dataplane", description=__doc__)
    p.add_argument("--prismnet-url", default=default("prismnet_url", "http://127.0.0.1:8087"))
    p.add_argument("--iam-url", default=default("iam_url", env.get("PHOTONCLOUD_IAM_URL", "http://127.0.0.1:8083")))
    p.add_argument("--token-file", type=Path, default=default("token_file", "") or None,
                   help="a file holding a system-scoped token (read again on every renewal)")
    p.add_argument("--client-id", default=default("client_id", ""), help="an IAM service account's id (system scope)")
    p.add_argument("--client-secret-file", type=Path, default=default("client_secret_file", "") or None)
    p.add_argument("--tls-ca", type=Path, default=default("tls_ca", env.get("PHOTONCLOUD_TLS_CA", "")) or None)
    p.add_argument("--prefix", default=default("prefix", DEFAULT_PREFIX),
                   help="the prefix of every device and namespace this agent owns (PlasmaVMC's and the node "
                        "agent's --dataplane-prefix must match)")
    p.add_argument("--state-dir", type=Path, default=default("state_dir", ""),
                   help="DHCP files and status.json (default /run/photoncloud/dataplane-<prefix>)")
    p.add_argument("--underlay", default=default("underlay", ""),
                   help="this host's address for VXLAN to the other hosts (none: VPCs stay on this host)")
    p.add_argument("--peer", action="append", default=[a for a in default("peers", "").split(",") if a],
                   help="another host's underlay address (repeat)")
    p.add_argument("--guard-range", action="append", default=[a for a in default("guard_ranges", "").split(",") if a],
                   help="a range besides the VPCs' that must never leave by the default route, e.g. cluster IPs")
    p.add_argument("--interval", type=float, default=float(default("interval", "1.0")), help="seconds between rounds")
    p.add_argument("--once", action="store_true", help="reconcile once and exit")
    p.add_argument("--teardown", action="store_true", help="remove everything this agent made, then exit")
    p.add_argument("--log-level", default=default("log_level", "INFO"))
    args = p.parse_args(argv)
    try:
        for address in (args.underlay, *args.peer):
            if address:
                ipaddress.ip_address(address)
        for cidr in args.guard_range:
            ipaddress.ip_network(cidr, strict=False)
        DeviceNames(args.prefix)
    except ValueError as exc:
        p.error(str(exc))
    args.state_dir = args.state_dir if str(args.state_dir) not in ("", ".") \
        else Path(f"/run/photoncloud/dataplane-{args.prefix}")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the agent until SIGTERM or SIGINT (what it made stays: VMs and pods keep their networks)."""
    args = parse(sys.argv[1:] if argv is None else argv)
    # Whatever umask it was started with: dnsmasq, which drops its privileges, reads the agent's DHCP files
    # (which hold no secret).
    os.umask(0o022)
    setup_logging("prismnet-dataplane", str(args.log_level).upper())
    why = unsupported()
    if why:
        print(f"the PrismNET dataplane cannot run here: {why}. VMs and pods keep user-mode networking "
              "(PlasmaVMC's and the node agent's /health say so).", file=sys.stderr)
        raise SystemExit(EXIT_UNSUPPORTED)
    dataplane = Dataplane(DeviceNames(args.prefix), args.state_dir, args.underlay, args.peer, args.guard_range)
    if args.teardown:
        dataplane.teardown()
        return
    tls.configure_clients(tls.TlsConfig(ca=args.tls_ca))
    secret = args.client_secret_file.read_text().strip() if args.client_secret_file else ""
    try:
        tokens = Tokens(os.environ.get(ENV + "TOKEN", ""), args.token_file, args.iam_url, args.client_id, secret,
                        how=f"--client-id with --client-secret-file, --token-file, or {ENV}TOKEN")
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    source = StateSource(args.prismnet_url, tokens)
    agent = Agent(dataplane, source, args.interval)

    async def run() -> None:
        try:
            if args.once:
                await agent.round()
                return
            task = asyncio.create_task(agent.run())
            on_stop_signals(task.cancel)
            try:
                await task
            except asyncio.CancelledError:
                log.info("stopping; the host keeps its networks")
        finally:
            await source.close()

    asyncio.run(run())


if __name__ == "__main__":
    main()
