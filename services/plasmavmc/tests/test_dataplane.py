"""VMs on PrismNET's bridges (--dataplane-prefix): each NIC is a TAP named for its port on its VPC's
bridge. With root, against a bridge the test makes itself (under a prefix of its own) and, on it, a
router namespace with the gateway address and dnsmasq, as PrismNET's dataplane agent would make
them: a real (TCG) guest gets its address by DHCP, pings its gateway, answers a ping and serves
TCP; the TAP is gone once the VM stops or is deleted; a start without the bridge is refused within
the bound. Without root: the setting's checks, the QEMU command line, and records stored before
a NIC kept its VPC."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.common.errors import FailedPrecondition
from photoncloud.common.netdev import DeviceNames
from photoncloud.common.network import PortInfo
from photoncloud.common.testing import FakeNetwork
from photoncloud.common.replication import LocalLog
from photoncloud.plasmavmc import app, taps
from photoncloud.plasmavmc.core import VmCore
from photoncloud.plasmavmc.driver import NicSpec, VmSpec
from photoncloud.plasmavmc.qemu import QemuDriver, alive
from photoncloud.plasmavmc.machine import VmStateMachine
from photoncloud.plasmavmc.records import State
from photoncloud.plasmavmc.store import SqliteVmStore
from photoncloud.plasmavmc.testing import (HTTP_BODY, HTTP_PORT, NET_MODULES, build_initramfs, kernel_modules,
                                           wait_for_console)

root = pytest.mark.usefixtures("as_root")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
SUBNET, GATEWAY, PREFIX_LEN = "10.213.7.0/24", "10.213.7.1", 24
MARKER = "NET-GUEST-UP"


def ip(*args: str) -> str:
    """`ip args` (iproute2), which must succeed; its output."""
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10).stdout


def link(name: str) -> dict | None:
    """`ip -d link show name` as JSON, or None when there is no such device."""
    shown = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", name], capture_output=True, text=True,
                           timeout=10)
    return json.loads(shown.stdout)[0] if shown.returncode == 0 else None


def delete_link(name: str) -> None:
    """Delete a device if it is there."""
    subprocess.run(["ip", "link", "del", "dev", name], capture_output=True, timeout=10)


@pytest.fixture
def names() -> DeviceNames:
    """Device names under a prefix of this test's own ("q" and three hex digits: the dataplane agent's
    and the node agent's tests take "t" ones), beside any real dataplane."""
    return DeviceNames("q" + secrets.token_hex(2)[:3])


def bridged_frames_filtered() -> bool:
    """Whether br_netfilter shows bridged packets to iptables (Docker loads it, with a FORWARD policy of DROP)."""
    try:
        return Path("/proc/sys/net/bridge/bridge-nf-call-iptables").read_text().strip() == "1"
    except OSError:
        return False


@pytest.fixture
def vpc(names):
    """A VPC id whose bridge exists (up, no address), as PrismNET's dataplane agent makes it; removed after.

    Where br_netfilter passes bridged packets through iptables' FORWARD chain (whose policy Docker sets
    to DROP), a rule accepts the bridge's own traffic, as the agent's does for its bridges."""
    vpc_id = f"vpc-{uuid.uuid4().hex}"
    bridge = names.bridge(vpc_id)
    accept = ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
    filtered = bridged_frames_filtered()
    ip("link", "add", bridge, "type", "bridge")
    try:
        ip("link", "set", bridge, "up")
        if filtered:
            subprocess.run(["iptables", "-I", *accept], check=True, capture_output=True, timeout=10)
        yield vpc_id
    finally:
        if filtered:
            subprocess.run(["iptables", "-D", *accept], capture_output=True, timeout=10)
        delete_link(bridge)


@dataclasses.dataclass
class Router:
    """The VPC's router namespace on its bridge: the gateway address on gw0, and dnsmasq for DHCP."""

    namespace: str
    directory: Path
    dnsmasq: subprocess.Popen | None = None

    def serve_dhcp(self, mac: str, address: str) -> None:
        """Start dnsmasq in the namespace, leasing address to mac only (DHCP only: no DNS)."""
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.namespace, DNSMASQ, "--keep-in-foreground", "--log-facility=-",
             "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0", "--interface=gw0",
             "--bind-interfaces", f"--pid-file={self.directory / 'dnsmasq.pid'}", "--leasefile-ro",
             "--dhcp-authoritative", f"--dhcp-range={SUBNET.split('/')[0]},static,255.255.255.0",
             f"--dhcp-host={mac},{address}", f"--dhcp-option=option:router,{GATEWAY}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def run(self, *command: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """A command inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.namespace, *command], capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture
def router(names, vpc, tmp_path):
    """The router namespace of vpc, wired to its bridge by a veth, holding the gateway address; removed after."""
    needs.tools("dnsmasq", "busybox", packages={"dnsmasq": "dnsmasq-base", "busybox": "busybox-static"})
    namespace, gateway = names.router(vpc), names.gateway(vpc)
    ip("netns", "add", namespace)
    made = Router(namespace, tmp_path)
    try:
        ip("link", "add", gateway, "type", "veth", "peer", "name", "gw0", "netns", namespace)
        ip("link", "set", gateway, "master", names.bridge(vpc), "up")
        ip("-n", namespace, "addr", "add", f"{GATEWAY}/{PREFIX_LEN}", "dev", "gw0")
        ip("-n", namespace, "link", "set", "gw0", "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        yield made
    finally:
        if made.dnsmasq is not None:
            made.dnsmasq.terminate()
            try:
                made.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                made.dnsmasq.kill()
                made.dnsmasq.wait(5)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        delete_link(gateway)  # gone with the namespace's end already, unless that failed


@pytest.fixture
def as_root():
    """Skips (in CI fails) a test of @root unless it runs as root, before its fixtures make anything."""
    needs.root("making bridges, TAPs and network namespaces")


@pytest.fixture(scope="module")
def net_initrd(tmp_path_factory):
    """A guest that brings eth0 up by DHCP, pings its peer= and serves HTTP before it prints MARKER."""
    return build_initramfs(tmp_path_factory.mktemp("netguest") / "initramfs.cpio", MARKER, network=True)


@root
async def test_a_guest_on_its_vpcs_bridge_gets_its_address_by_dhcp_and_answers(tmp_path, guest, net_initrd, names,
                                                                                vpc, router):
    kernel, _, _ = guest
    mac, address, port_id = "fa:16:3e:5a:00:07", "10.213.7.5", f"port-{uuid.uuid4().hex}"
    tap, bridge = names.port(port_id), names.bridge(vpc)
    router.serve_dhcp(mac, address)
    # A TAP of the port left over (as a crash between a start and a stop leaves it): the start replaces it.
    ip("tuntap", "add", "dev", tap, "mode", "tap")
    driver = QemuDriver(tmp_path / "vms", accel="tcg", taps=taps.Taps(names.prefix, bridge_wait=5))
    nic = NicSpec(mac, address, SUBNET, GATEWAY, port_id, vpc)
    spec = VmSpec("netguest", 1, 128, kernel, net_initrd, f"console=ttyS0 panic=-1 peer={GATEWAY}", nics=(nic,))
    try:
        await driver.start(spec)
        shown = link(tap)
        assert shown is not None and shown["master"] == bridge and shown["operstate"] != "DOWN"
        assert shown["linkinfo"]["info_kind"] == "tun" and shown["linkinfo"]["info_data"]["type"] == "tap"
        assert shown["mtu"] == link(bridge)["mtu"]
        assert shown["address"] == "fe:16:3e:5a:00:07"  # the host's end: not the guest's MAC
        assert Path(f"/proc/sys/net/ipv6/conf/{tap}/disable_ipv6").read_text().strip() == "1"
        assert "inet6" not in ip("addr", "show", "dev", tap)  # the host has no address on it
        qmp = await driver._client("netguest")  # noqa: SLF001 - QMP straight (the answer is a list)
        filters = await qmp.execute("query-rx-filter")
        assert [f["main-mac"] for f in filters] == [mac]  # the guest's NIC carries the port's MAC
        output = await wait_for_console(driver, "netguest", MARKER)
        assert f"NET {address}/{PREFIX_LEN} via {GATEWAY}" in output, output[-3000:]
        assert f"PEER {GATEWAY} OK" in output and f"LISTEN {HTTP_PORT}" in output, output[-3000:]
        # The bridge learned the guest's MAC behind its TAP.
        fdb = json.loads(subprocess.run(["bridge", "-j", "fdb", "show", "br", bridge], check=True,
                                        capture_output=True, text=True, timeout=10).stdout)
        assert any(e["mac"] == mac and e["ifname"] == tap for e in fdb), fdb
        # From the router namespace: the guest answers a ping and its TCP port.
        pinged = router.run("busybox", "ping", "-c", "3", "-W", "2", address)
        assert pinged.returncode == 0 and "3 packets received" in pinged.stdout, pinged.stdout + pinged.stderr
        # (busybox wget's -T crashes it: run()'s timeout bounds it instead)
        fetched = router.run("busybox", "wget", "-O", "-", f"http://{address}:{HTTP_PORT}/")
        assert fetched.stdout.strip() == HTTP_BODY, (fetched.returncode, fetched.stderr)
        # A stop deletes the TAP; a start makes it again; a delete deletes it for good.
        assert await driver.stop("netguest", timeout=0) is False
        assert link(tap) is None
        await driver.start(spec)
        assert link(tap)["master"] == bridge
    finally:
        await driver.remove("netguest")
        await driver.close()
        assert link(tap) is None
        delete_link(tap)
    assert router.dnsmasq.poll() is None, router.dnsmasq.stderr.read()  # it served throughout


@root
async def test_a_start_without_the_vpcs_bridge_is_refused_within_the_bound(tmp_path, guest, names):
    kernel, initrd, _ = guest
    vpc_id, port_id = f"vpc-{uuid.uuid4().hex}", f"port-{uuid.uuid4().hex}"
    driver = QemuDriver(tmp_path / "vms", accel="tcg", taps=taps.Taps(names.prefix, bridge_wait=1.0))
    nic = NicSpec("fa:16:3e:5a:00:08", "10.213.7.6", SUBNET, GATEWAY, port_id, vpc_id)
    started = time.monotonic()
    try:
        with pytest.raises(FailedPrecondition) as refused:
            await driver.start(VmSpec("nobridge", 1, 128, kernel, initrd, "console=ttyS0", nics=(nic,)))
        assert 1.0 <= time.monotonic() - started < 5
        bridge = names.bridge(vpc_id)
        assert refused.value.details == {"reason": "DATAPLANE_NOT_READY", "bridge": bridge, "vpc_id": vpc_id}
        assert bridge in refused.value.message and vpc_id in refused.value.message
        assert driver.pid("nobridge") is None and link(names.port(port_id)) is None
        assert not (tmp_path / "vms" / "nobridge" / "taps").exists()
    finally:
        await driver.remove("nobridge")
        await driver.close()


@root
async def test_a_vm_refused_for_want_of_its_bridge_starts_once_the_bridge_is_there(tmp_path, guest, names):
    kernel, initrd, _ = guest
    vpc_id = f"vpc-{uuid.uuid4().hex}"
    bridge = names.bridge(vpc_id)
    store = SqliteVmStore(tmp_path / "vms.sqlite3")
    machine = VmStateMachine(store)
    driver = QemuDriver(tmp_path / "vms", accel="tcg", taps=taps.Taps(names.prefix, bridge_wait=1.0))
    core = VmCore(machine, LocalLog(machine), driver, tmp_path / "images",
                  network=VpcNetwork({"s1": ("p1", SUBNET)}, vpc_id=vpc_id))
    vm_id = ""
    try:
        image = await core.register_image("busybox", kernel_path=str(kernel), initrd_path=str(initrd))
        vm = await core.create_vm("early", "o1", "p1", image.id, vcpus=1, memory_mib=128, subnet_ids=["s1"])
        vm_id = vm.id
        with pytest.raises(FailedPrecondition, match=bridge):
            await core.start_vm(vm.id)
        failed = await core.vm(vm.id)
        assert failed.state is State.ERROR and bridge in failed.last_error and vpc_id in failed.last_error
        assert driver.pid(vm.id) is None
        ip("link", "add", bridge, "type", "bridge")  # the dataplane agent catches up
        ip("link", "set", bridge, "up")
        assert (await core.start_vm(vm.id)).state is State.RUNNING
        assert link(names.port(vm.nics[0].port_id))["master"] == bridge
        await core.delete_vm(vm.id)
        assert link(names.port(vm.nics[0].port_id)) is None
    finally:
        if vm_id:
            await driver.remove(vm_id)
        await core.close()
        store.close()
        delete_link(bridge)


@dataclasses.dataclass
class VpcNetwork(FakeNetwork):
    """FakeNetwork whose ports are in one VPC, as PrismNET's client reports them."""

    vpc_id: str = ""

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """A port of the VPC."""
        port = dataclasses.replace(await super().create_port(subnet_id, name, device_id), vpc_id=self.vpc_id)
        self.ports[port.id] = port
        return port


@root
async def test_a_vms_nic_follows_its_life_through_the_core(tmp_path, guest, names, vpc):
    kernel, initrd, _ = guest
    store = SqliteVmStore(tmp_path / "vms.sqlite3")
    machine = VmStateMachine(store)
    driver = QemuDriver(tmp_path / "vms", accel="tcg", taps=taps.Taps(names.prefix, 5))
    core = VmCore(machine, LocalLog(machine), driver, tmp_path / "images",
                  network=VpcNetwork({"s1": ("p1", SUBNET)}, vpc_id=vpc))
    vm_id = ""
    try:
        image = await core.register_image("busybox", kernel_path=str(kernel), initrd_path=str(initrd))
        vm = await core.create_vm("plugged", "o1", "p1", image.id, vcpus=1, memory_mib=128, subnet_ids=["s1"])
        vm_id = vm.id
        (nic,) = vm.nics
        assert nic.vpc_id == vpc and (await core.vm(vm.id)).nics[0].vpc_id == vpc  # kept in the store
        tap = names.port(nic.port_id)
        await core.start_vm(vm.id)
        assert link(tap)["master"] == names.bridge(vpc)
        await core.stop_vm(vm.id, force=True)
        assert link(tap) is None
        # QEMU dies under a running VM: the monitor finds it ERROR and deletes its TAP.
        await core.start_vm(vm.id)
        pid = core.driver.pid(vm.id)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid, vm.id) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await core.reconcile()
        assert (await core.vm(vm.id)).state is State.ERROR and link(tap) is None
        await core.start_vm(vm.id)
        assert link(tap) is not None
        await core.delete_vm(vm.id)
        assert link(tap) is None
    finally:
        if vm_id:
            await core.driver.remove(vm_id)
        await core.close()
        store.close()


def test_the_qemu_command_puts_each_nic_on_its_tap(tmp_path):
    driver = QemuDriver(tmp_path / "vms", accel="tcg", taps=taps.Taps("t0"))
    nic = NicSpec("fa:16:3e:00:00:01", "10.0.1.2", "10.0.1.0/24", "10.0.1.1", "port-1", "vpc-1")
    spec = VmSpec("v", 1, 128, nics=(nic, dataclasses.replace(nic, port_id="port-2")))
    args = " ".join(driver.command(spec, 3, [driver.taps.name("port-1"), driver.taps.name("port-2")]))
    tap1, tap2 = DeviceNames("t0").port("port-1"), DeviceNames("t0").port("port-2")
    assert f"-netdev tap,id=net0,ifname={tap1},script=no,downscript=no" in args
    assert f"-netdev tap,id=net1,ifname={tap2},script=no,downscript=no" in args
    assert "-device virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,romfile=" in args
    assert "user," not in args
    # Without a dataplane: user-mode, restricted, as before.
    plain = " ".join(QemuDriver(tmp_path / "plain", accel="tcg").command(spec, 3))
    assert "-netdev user,id=net0,restrict=on" in plain and "tap," not in plain


def test_the_setting_refuses_a_malformed_prefix_and_a_host_that_cannot_make_taps(monkeypatch):
    assert app.dataplane("") is None
    with pytest.raises(SystemExit, match="dataplane-prefix.*lower-case letter"):
        app.dataplane("PC-1")
    monkeypatch.setattr(app, "why_not", lambda: "PlasmaVMC lacks CAP_NET_ADMIN (run it as root) to make TAP devices")
    with pytest.raises(SystemExit, match="lacks CAP_NET_ADMIN.*user-mode"):
        app.dataplane("pc")
    monkeypatch.setattr(app, "why_not", lambda: "")
    made = app.dataplane("pc")
    assert made is not None and made.describe() == "dataplane (bridges, prefix pc)"
    assert taps.network_mode("") == "user-mode (QEMU slirp, restricted)"
    monkeypatch.setattr(taps, "IPRoute", None)
    assert "pyroute2" in taps.why_not()


def test_a_vm_stored_before_nics_kept_their_vpc_still_loads(tmp_path):
    store = SqliteVmStore(tmp_path / "vms.sqlite3")
    try:
        old_nic = {"port_id": "port-1", "subnet_id": "s1", "ip_address": "10.0.1.2", "mac_address": "fa:16:3e:00:00:01",
                   "gateway_ip": "10.0.1.1", "cidr_block": "10.0.1.0/24"}
        with store.transaction():
            store.db.execute("INSERT INTO vms VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             ("vm1", "old", "o1", "p1", "STOPPED", "", 1, 128, "img", json.dumps([old_nic]), 0, "", 0,
                              "", "", 1.0, 1.0, 0.0))
        (nic,) = store.vm("vm1").nics
        assert nic.port_id == "port-1" and nic.vpc_id == ""
    finally:
        store.close()


async def test_a_nic_without_its_vpc_is_refused_with_the_dataplane_on():
    with pytest.raises(FailedPrecondition) as refused:
        await taps.Taps("t0").plug("port-1", "", "fa:16:3e:00:00:01")
    assert refused.value.details["reason"] == "NIC_WITHOUT_VPC"


def test_the_guests_network_modules_load_after_what_they_depend_on(guest):
    kernel, _, _ = guest
    order = [name for name, data in kernel_modules(kernel, NET_MODULES)]
    assert order[-1] == "virtio_net" and "virtio_pci" in order
    for before, after in (("failover", "net_failover"), ("net_failover", "virtio_net"), ("virtio", "virtio_pci"),
                          ("virtio_ring", "virtio_net")):
        assert order.index(before) < order.index(after), order
    assert all(data[:4] == b"\x7fELF" for _, data in kernel_modules(kernel, NET_MODULES))
