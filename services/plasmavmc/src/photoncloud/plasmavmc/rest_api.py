"""PlasmaVMC's REST adapter: JSON in, `await core.x(...)`, JSON out (shaped by views.py)."""

from __future__ import annotations

from aiohttp import web
from pydantic import Field

from photoncloud.common.auth import OPERATOR, TENANT
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable

from . import core, views
from .core import FLAVORS_MANAGE, FLAVORS_READ, IMAGES_MANAGE, IMAGES_READ, VMS_READ, VMS_WRITE

PACKAGE = "photoncloud.plasmavmc.v1."
FLAVORS, IMAGES, VMS = (PACKAGE + s + "/" for s in ("Flavors", "Images", "Vms"))


class FlavorOut(Result):
    """A flavor: a VM size and its price."""

    id: str
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    price_per_hour: int = Field(description="credits per hour of running")
    description: str
    created_at: str
    updated_at: str


class FlavorList(Result):
    """A page of flavors."""

    items: list[FlavorOut]
    next_page_token: str


class FlavorBody(Body):
    """A flavor to create."""

    name: str
    vcpus: int
    memory_mib: int = Field(description="at least 128")
    disk_gib: int = 0
    price_per_hour: int = Field(0, description="credits per hour of running")
    description: str = ""


class FlavorUpdate(Body):
    """Fields of a flavor to change (absent ones keep their value)."""

    price_per_hour: int | None = None
    description: str | None = None


class PageQuery(Query):
    """A page of a listing."""

    page_size: int = 0
    page_token: str = ""


class ImageFileOut(Result):
    """One file of an image."""

    size_bytes: int
    sha256: str


class ImageOut(Result):
    """An image: a kernel (and initrd) or a disk."""

    id: str
    name: str
    kind: str = Field(description="KERNEL or DISK")
    kernel: ImageFileOut | None
    initrd: ImageFileOut | None
    disk: ImageFileOut | None
    disk_format: str = Field(description="raw or qcow2 (DISK images)")
    cmdline: str = Field(description="the kernel command line (KERNEL images)")
    size_bytes: int
    description: str
    created_at: str


class ImageList(Result):
    """A page of images."""

    items: list[ImageOut]
    next_page_token: str


class ImageBody(Body):
    """An image to register from files on PlasmaVMC's host (they are copied)."""

    name: str
    kernel_path: str = Field("", description="an absolute path on the host (or disk_path)")
    initrd_path: str = ""
    disk_path: str = Field("", description="a raw or qcow2 disk image (or kernel_path)")
    cmdline: str = Field("", description="default: console=ttyS0 panic=-1")
    kernel_sha256: str = Field("", description="when set, the kernel must have this digest")
    initrd_sha256: str = ""
    disk_sha256: str = ""
    description: str = ""


class NicOut(Result):
    """A NIC: a PrismNET port."""

    port_id: str
    subnet_id: str
    ip_address: str
    mac_address: str


class VmOut(Result):
    """A virtual machine."""

    id: str
    name: str
    org_id: str
    project_id: str
    state: str = Field(description="CREATING, STOPPED, STARTING, RUNNING, PAUSED, STOPPING, ERROR or DELETING")
    flavor_id: str
    vcpus: int
    memory_mib: int
    image_id: str
    nics: list[NicOut]
    price_per_hour: int
    reservation_id: str = Field(description="the pending reservation the next start commits")
    charged: int = Field(description="credits committed so far")
    last_error: str = Field(description="why the VM is in ERROR, or what went wrong last")
    description: str
    created_at: str
    updated_at: str
    started_at: str


class VmList(Result):
    """A page of VMs."""

    items: list[VmOut]
    next_page_token: str


class VmBody(Body):
    """A VM to create: a flavor or an explicit size, an image, a NIC per subnet."""

    name: str
    org_id: str = Field("", description="the project's org (default: as IAM knows it)")
    project_id: str
    flavor_id: str = Field("", description="a flavor's id or name (or vcpus and memory_mib)")
    vcpus: int = 0
    memory_mib: int = 0
    image_id: str
    subnet_ids: list[str] = Field(default_factory=list, description="one NIC per PrismNET subnet")
    description: str = ""


class VmQuery(Query):
    """A page of VMs, filtered by org, project and state."""

    org_id: str = ""
    project_id: str = ""
    state: str = ""
    page_size: int = 0
    page_token: str = ""


class StopQuery(Query):
    """How to stop."""

    force: bool = Field(False, description="kill the QEMU process at once")
    timeout_seconds: int = Field(0, description="how long the guest gets to power off (default 30)")


class ConsoleQuery(Query):
    """How much of the console log."""

    tail_bytes: int = Field(0, description="default 65536, at most 1048576")


class ConsoleOut(Result):
    """The end of a VM's serial console log."""

    vm_id: str
    output: str
    size_bytes: int
    truncated: bool


def routes(vmc: core.VmCore) -> RouteTable:
    """PlasmaVMC's REST routes over vmc."""
    table = RouteTable()

    @table.post("/api/v1/flavors", "Create a flavor", body=FlavorBody, response=FlavorOut, status=201,
                rpc=FLAVORS + "CreateFlavor", permission=FLAVORS_MANAGE, who=OPERATOR)
    async def create_flavor(request: web.Request, body: FlavorBody) -> FlavorOut:
        flavor = await vmc.create_flavor(body.name, body.vcpus, body.memory_mib, body.disk_gib, body.price_per_hour,
                                         body.description)
        return FlavorOut(**views.flavor(flavor))

    @table.get("/api/v1/flavors", "Every flavor", query=PageQuery, response=FlavorList, rpc=FLAVORS + "ListFlavors",
               permission=FLAVORS_READ, who=TENANT)
    async def list_flavors(request: web.Request, query: PageQuery) -> FlavorList:
        found = await vmc.flavors(query.page_size, query.page_token)
        return FlavorList(**views.page([views.flavor(f) for f in found.items], found.next_page_token))

    @table.get("/api/v1/flavors/{id}", "A flavor, by id or name", response=FlavorOut, rpc=FLAVORS + "GetFlavor",
               permission=FLAVORS_READ, who=TENANT)
    async def get_flavor(request: web.Request, id: str) -> FlavorOut:
        return FlavorOut(**views.flavor(await vmc.flavor(id)))

    @table.patch("/api/v1/flavors/{id}", "Change a flavor's price or description", body=FlavorUpdate,
                 response=FlavorOut, rpc=FLAVORS + "UpdateFlavor", permission=FLAVORS_MANAGE, who=OPERATOR)
    async def update_flavor(request: web.Request, id: str, body: FlavorUpdate) -> FlavorOut:
        return FlavorOut(**views.flavor(await vmc.update_flavor(id, body.price_per_hour, body.description)))

    @table.delete("/api/v1/flavors/{id}", "Delete a flavor", response=FlavorOut, rpc=FLAVORS + "DeleteFlavor",
                  permission=FLAVORS_MANAGE, who=OPERATOR)
    async def delete_flavor(request: web.Request, id: str) -> FlavorOut:
        return FlavorOut(**views.flavor(await vmc.delete_flavor(id)))

    @table.post("/api/v1/images", "Register an image from files on the host", body=ImageBody, response=ImageOut,
                status=201, rpc=IMAGES + "RegisterImage", permission=IMAGES_MANAGE, who=OPERATOR)
    async def register_image(request: web.Request, body: ImageBody) -> ImageOut:
        image = await vmc.register_image(body.name, body.kernel_path, body.initrd_path, body.disk_path, body.cmdline,
                                         body.description, body.kernel_sha256, body.initrd_sha256, body.disk_sha256)
        return ImageOut(**views.image(image))

    @table.get("/api/v1/images", "Every image", query=PageQuery, response=ImageList, rpc=IMAGES + "ListImages",
               permission=IMAGES_READ, who=TENANT)
    async def list_images(request: web.Request, query: PageQuery) -> ImageList:
        found = await vmc.images(query.page_size, query.page_token)
        return ImageList(**views.page([views.image(i) for i in found.items], found.next_page_token))

    @table.get("/api/v1/images/{id}", "An image", response=ImageOut, rpc=IMAGES + "GetImage",
               permission=IMAGES_READ, who=TENANT)
    async def get_image(request: web.Request, id: str) -> ImageOut:
        return ImageOut(**views.image(await vmc.image(id)))

    @table.delete("/api/v1/images/{id}", "Delete an image no VM uses", response=ImageOut,
                  rpc=IMAGES + "DeleteImage", permission=IMAGES_MANAGE, who=OPERATOR)
    async def delete_image(request: web.Request, id: str) -> ImageOut:
        return ImageOut(**views.image(await vmc.delete_image(id)))

    @table.post("/api/v1/vms", "Create a VM: reserve its first hour, make its ports", body=VmBody, response=VmOut,
                status=201, rpc=VMS + "CreateVm", permission=VMS_WRITE, who=TENANT)
    async def create_vm(request: web.Request, body: VmBody) -> VmOut:
        vm = await vmc.create_vm(body.name, body.org_id, body.project_id, body.image_id, body.flavor_id, body.vcpus,
                                 body.memory_mib, body.subnet_ids, body.description)
        return VmOut(**views.vm(vm))

    @table.get("/api/v1/vms", "The VMs the caller may see", query=VmQuery, response=VmList, rpc=VMS + "ListVms",
               permission=VMS_READ, who=TENANT)
    async def list_vms(request: web.Request, query: VmQuery) -> VmList:
        found = await vmc.vms(query.org_id, query.project_id, query.state, query.page_size, query.page_token)
        return VmList(**views.page([views.vm(v) for v in found.items], found.next_page_token))

    @table.get("/api/v1/vms/{id}", "A VM", response=VmOut, rpc=VMS + "GetVm", permission=VMS_READ, who=TENANT)
    async def get_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.vm(id)))

    @table.delete("/api/v1/vms/{id}", "Delete a VM: its process, ports and reservation", response=VmOut,
                  rpc=VMS + "DeleteVm", permission=VMS_WRITE, who=TENANT)
    async def delete_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.delete_vm(id)))

    @table.post("/api/v1/vms/{id}/start", "Boot a VM and charge its hour", response=VmOut, rpc=VMS + "StartVm",
                permission=VMS_WRITE, who=TENANT)
    async def start_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.start_vm(id)))

    @table.post("/api/v1/vms/{id}/stop", "Power a VM off (gracefully, then forced)", query=StopQuery,
                response=VmOut, rpc=VMS + "StopVm", permission=VMS_WRITE, who=TENANT)
    async def stop_vm(request: web.Request, id: str, query: StopQuery) -> VmOut:
        return VmOut(**views.vm(await vmc.stop_vm(id, query.force, query.timeout_seconds)))

    @table.post("/api/v1/vms/{id}/reboot", "Reset a running VM", response=VmOut, rpc=VMS + "RebootVm",
                permission=VMS_WRITE, who=TENANT)
    async def reboot_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.reboot_vm(id)))

    @table.post("/api/v1/vms/{id}/pause", "Freeze a running VM", response=VmOut, rpc=VMS + "PauseVm",
                permission=VMS_WRITE, who=TENANT)
    async def pause_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.pause_vm(id)))

    @table.post("/api/v1/vms/{id}/resume", "Let a paused VM run again", response=VmOut, rpc=VMS + "ResumeVm",
                permission=VMS_WRITE, who=TENANT)
    async def resume_vm(request: web.Request, id: str) -> VmOut:
        return VmOut(**views.vm(await vmc.resume_vm(id)))

    @table.get("/api/v1/vms/{id}/console", "The end of a VM's serial console", query=ConsoleQuery,
               response=ConsoleOut, rpc=VMS + "GetConsole", permission=VMS_READ, who=TENANT)
    async def get_console(request: web.Request, id: str, query: ConsoleQuery) -> ConsoleOut:
        return ConsoleOut(**views.console(await vmc.console(id, query.tail_bytes)))

    return table
