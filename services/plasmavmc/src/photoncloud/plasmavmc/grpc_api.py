"""PlasmaVMC's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (built by convert.py).
REST is served by the same servicers, through the routes the contract binds."""

from __future__ import annotations

from typing import Any

from photoncloud.common.messages import optional
from photoncloud.common.server import GrpcService, grpc_services
from photoncloud.plasmavmc.v1 import plasmavmc_pb2 as pb
from photoncloud.plasmavmc.v1 import plasmavmc_pb2_grpc as pb_grpc

from . import convert, core

Context = Any  # grpc.aio.ServicerContext, or the gateway's RestContext


class FlavorsServicer(pb_grpc.FlavorsServicer):
    """photoncloud.plasmavmc.v1.Flavors over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def CreateFlavor(self, request: pb.CreateFlavorRequest, context: Context) -> pb.Flavor:
        return convert.flavor(await self.vmc.create_flavor(request.name, request.vcpus, request.memory_mib,
                                                           request.disk_gib, request.price_per_hour,
                                                           request.description))

    async def GetFlavor(self, request: pb.GetFlavorRequest, context: Context) -> pb.Flavor:
        return convert.flavor(await self.vmc.flavor(request.id))

    async def ListFlavors(self, request: pb.ListFlavorsRequest, context: Context) -> pb.ListFlavorsResponse:
        found = await self.vmc.flavors(request.page_size, request.page_token)
        return pb.ListFlavorsResponse(items=[convert.flavor(f) for f in found.items],
                                      next_page_token=found.next_page_token)

    async def UpdateFlavor(self, request: pb.UpdateFlavorRequest, context: Context) -> pb.Flavor:
        return convert.flavor(await self.vmc.update_flavor(request.id, optional(request, "price_per_hour"),
                                                           optional(request, "description")))

    async def DeleteFlavor(self, request: pb.DeleteFlavorRequest, context: Context) -> pb.Flavor:
        return convert.flavor(await self.vmc.delete_flavor(request.id))


class ImagesServicer(pb_grpc.ImagesServicer):
    """photoncloud.plasmavmc.v1.Images over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def RegisterImage(self, request: pb.RegisterImageRequest, context: Context) -> pb.Image:
        image = await self.vmc.register_image(request.name, request.kernel_path, request.initrd_path,
                                              request.disk_path, request.cmdline, request.description,
                                              request.kernel_sha256, request.initrd_sha256, request.disk_sha256)
        return convert.image(image)

    async def GetImage(self, request: pb.GetImageRequest, context: Context) -> pb.Image:
        return convert.image(await self.vmc.image(request.id))

    async def ListImages(self, request: pb.ListImagesRequest, context: Context) -> pb.ListImagesResponse:
        found = await self.vmc.images(request.page_size, request.page_token)
        return pb.ListImagesResponse(items=[convert.image(i) for i in found.items],
                                     next_page_token=found.next_page_token)

    async def DeleteImage(self, request: pb.DeleteImageRequest, context: Context) -> pb.Image:
        return convert.image(await self.vmc.delete_image(request.id))


class VmsServicer(pb_grpc.VmsServicer):
    """photoncloud.plasmavmc.v1.Vms over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def CreateVm(self, request: pb.CreateVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.create_vm(request.name, request.org_id, request.project_id,
                                                   request.image_id, request.flavor_id, request.vcpus,
                                                   request.memory_mib, list(request.subnet_ids), request.description))

    async def GetVm(self, request: pb.GetVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.vm(request.id))

    async def ListVms(self, request: pb.ListVmsRequest, context: Context) -> pb.ListVmsResponse:
        found = await self.vmc.vms(request.org_id, request.project_id, request.state, request.page_size,
                                   request.page_token)
        return pb.ListVmsResponse(items=[convert.vm(v) for v in found.items], next_page_token=found.next_page_token)

    async def DeleteVm(self, request: pb.DeleteVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.delete_vm(request.id))

    async def StartVm(self, request: pb.StartVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.start_vm(request.id))

    async def StopVm(self, request: pb.StopVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.stop_vm(request.id, request.force, request.timeout_seconds))

    async def RebootVm(self, request: pb.RebootVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.reboot_vm(request.id))

    async def PauseVm(self, request: pb.PauseVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.pause_vm(request.id))

    async def ResumeVm(self, request: pb.ResumeVmRequest, context: Context) -> pb.Vm:
        return convert.vm(await self.vmc.resume_vm(request.id))

    async def GetConsole(self, request: pb.GetConsoleRequest, context: Context) -> pb.Console:
        return convert.console(await self.vmc.console(request.id, request.tail_bytes))


def services(vmc: core.VmCore) -> list[GrpcService]:
    """PlasmaVMC's gRPC services over vmc."""
    return grpc_services(pb, pb_grpc, {"Flavors": FlavorsServicer(vmc), "Images": ImagesServicer(vmc),
                                       "Vms": VmsServicer(vmc)})
