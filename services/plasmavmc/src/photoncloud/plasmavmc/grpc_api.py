"""PlasmaVMC's gRPC adapter: protobuf in, `await core.x(...)`, protobuf out (shaped by views.py)."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import Message

from photoncloud.common.messages import to_message
from photoncloud.common.server import GrpcService
from photoncloud.plasmavmc.v1 import plasmavmc_pb2 as pb
from photoncloud.plasmavmc.v1 import plasmavmc_pb2_grpc as pb_grpc

from . import core, views

Context = grpc.aio.ServicerContext


def _optional(request: Message, field: str) -> Any:
    return getattr(request, field) if request.HasField(field) else None


class FlavorsServicer(pb_grpc.FlavorsServicer):
    """photoncloud.plasmavmc.v1.Flavors over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def CreateFlavor(self, request: pb.CreateFlavorRequest, context: Context) -> pb.Flavor:
        flavor = await self.vmc.create_flavor(request.name, request.vcpus, request.memory_mib, request.disk_gib,
                                              request.price_per_hour, request.description)
        return to_message(views.flavor(flavor), pb.Flavor)

    async def GetFlavor(self, request: pb.GetFlavorRequest, context: Context) -> pb.Flavor:
        return to_message(views.flavor(await self.vmc.flavor(request.id)), pb.Flavor)

    async def ListFlavors(self, request: pb.ListFlavorsRequest, context: Context) -> pb.ListFlavorsResponse:
        found = await self.vmc.flavors(request.page_size, request.page_token)
        page = views.page([views.flavor(f) for f in found.items], found.next_page_token)
        return to_message(page, pb.ListFlavorsResponse)

    async def UpdateFlavor(self, request: pb.UpdateFlavorRequest, context: Context) -> pb.Flavor:
        flavor = await self.vmc.update_flavor(request.id, _optional(request, "price_per_hour"),
                                              _optional(request, "description"))
        return to_message(views.flavor(flavor), pb.Flavor)

    async def DeleteFlavor(self, request: pb.DeleteFlavorRequest, context: Context) -> pb.Flavor:
        return to_message(views.flavor(await self.vmc.delete_flavor(request.id)), pb.Flavor)


class ImagesServicer(pb_grpc.ImagesServicer):
    """photoncloud.plasmavmc.v1.Images over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def RegisterImage(self, request: pb.RegisterImageRequest, context: Context) -> pb.Image:
        image = await self.vmc.register_image(request.name, request.kernel_path, request.initrd_path,
                                              request.disk_path, request.cmdline, request.description,
                                              request.kernel_sha256, request.initrd_sha256, request.disk_sha256)
        return to_message(views.image(image), pb.Image)

    async def GetImage(self, request: pb.GetImageRequest, context: Context) -> pb.Image:
        return to_message(views.image(await self.vmc.image(request.id)), pb.Image)

    async def ListImages(self, request: pb.ListImagesRequest, context: Context) -> pb.ListImagesResponse:
        found = await self.vmc.images(request.page_size, request.page_token)
        page = views.page([views.image(i) for i in found.items], found.next_page_token)
        return to_message(page, pb.ListImagesResponse)

    async def DeleteImage(self, request: pb.DeleteImageRequest, context: Context) -> pb.Image:
        return to_message(views.image(await self.vmc.delete_image(request.id)), pb.Image)


class VmsServicer(pb_grpc.VmsServicer):
    """photoncloud.plasmavmc.v1.Vms over the core."""

    def __init__(self, vmc: core.VmCore):
        self.vmc = vmc

    async def CreateVm(self, request: pb.CreateVmRequest, context: Context) -> pb.Vm:
        vm = await self.vmc.create_vm(request.name, request.org_id, request.project_id, request.image_id,
                                      request.flavor_id, request.vcpus, request.memory_mib, list(request.subnet_ids),
                                      request.description)
        return to_message(views.vm(vm), pb.Vm)

    async def GetVm(self, request: pb.GetVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.vm(request.id)), pb.Vm)

    async def ListVms(self, request: pb.ListVmsRequest, context: Context) -> pb.ListVmsResponse:
        found = await self.vmc.vms(request.org_id, request.project_id, request.state, request.page_size,
                                   request.page_token)
        return to_message(views.page([views.vm(v) for v in found.items], found.next_page_token), pb.ListVmsResponse)

    async def DeleteVm(self, request: pb.DeleteVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.delete_vm(request.id)), pb.Vm)

    async def StartVm(self, request: pb.StartVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.start_vm(request.id)), pb.Vm)

    async def StopVm(self, request: pb.StopVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.stop_vm(request.id, request.force, request.timeout_seconds)), pb.Vm)

    async def RebootVm(self, request: pb.RebootVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.reboot_vm(request.id)), pb.Vm)

    async def PauseVm(self, request: pb.PauseVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.pause_vm(request.id)), pb.Vm)

    async def ResumeVm(self, request: pb.ResumeVmRequest, context: Context) -> pb.Vm:
        return to_message(views.vm(await self.vmc.resume_vm(request.id)), pb.Vm)

    async def GetConsole(self, request: pb.GetConsoleRequest, context: Context) -> pb.Console:
        return to_message(views.console(await self.vmc.console(request.id, request.tail_bytes)), pb.Console)


def services(vmc: core.VmCore) -> list[GrpcService]:
    """PlasmaVMC's gRPC services over vmc."""
    servicers = {"Flavors": (FlavorsServicer, pb_grpc.add_FlavorsServicer_to_server),
                 "Images": (ImagesServicer, pb_grpc.add_ImagesServicer_to_server),
                 "Vms": (VmsServicer, pb_grpc.add_VmsServicer_to_server)}
    descriptor = pb.DESCRIPTOR.services_by_name
    return [GrpcService(descriptor[name].full_name, lambda server, s=servicer, add=add: add(s(vmc), server))
            for name, (servicer, add) in servicers.items()]
