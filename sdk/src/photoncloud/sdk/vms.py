"""PlasmaVMC: VMs, their lifecycle and console, flavors and images."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg

# States a VM passes through on its way to a settled one.
TRANSITIONAL = frozenset({"CREATING", "STARTING", "STOPPING", "DELETING"})


class VMs(Service):
    """PlasmaVMC's REST API (port 8084)."""

    def create(self, name: str, project_id: str, image_id: str, flavor_id: str | None = None,
               vcpus: int | None = None, memory_mib: int | None = None, subnet_ids: builtins.list[str] | None = None,
               org_id: str | None = None, description: str | None = None) -> Json:
        """A VM, STOPPED, sized by a flavor (ID or name) or vcpus and memory_mib; one NIC per subnet."""
        return self._post("/api/v1/vms", fields(name=name, project_id=project_id, image_id=image_id,
                                                flavor_id=flavor_id, vcpus=vcpus, memory_mib=memory_mib,
                                                subnet_ids=subnet_ids, org_id=org_id, description=description))

    def get(self, vm_id: str) -> Json:
        """One VM."""
        return self._get(f"/api/v1/vms/{seg(vm_id)}")

    def list(self, project_id: str | None = None, org_id: str | None = None,
             state: str | None = None) -> Iterator[Json]:
        """The VMs the token sees (of a project, in a state)."""
        return self._pages("/api/v1/vms", project_id=project_id, org_id=org_id, state=state)

    def delete(self, vm_id: str) -> Json:
        """Delete a VM (its NICs' ports and reservation go with it)."""
        return self._delete(f"/api/v1/vms/{seg(vm_id)}")

    def action(self, vm_id: str, action: str) -> Json:
        """Run start, stop, reboot, pause or resume."""
        if action not in ("start", "stop", "reboot", "pause", "resume"):
            raise ValueError(f"unknown VM action {action!r}")
        return self._post(f"/api/v1/vms/{seg(vm_id)}/{action}")

    def start(self, vm_id: str) -> Json:
        """Boot a STOPPED VM (charging its first hour)."""
        return self.action(vm_id, "start")

    def stop(self, vm_id: str) -> Json:
        """Stop a VM."""
        return self.action(vm_id, "stop")

    def console(self, vm_id: str, tail_bytes: int | None = None) -> Json:
        """The serial console's last tail_bytes ({"output": ...})."""
        return self._get(f"/api/v1/vms/{seg(vm_id)}/console", tail_bytes=tail_bytes)

    def create_flavor(self, name: str, vcpus: int, memory_mib: int, **more: Any) -> Json:
        """A flavor (the operator's)."""
        return self._post("/api/v1/flavors", {"name": name, "vcpus": vcpus, "memory_mib": memory_mib, **more})

    def flavors(self) -> Iterator[Json]:
        """The flavors."""
        return self._pages("/api/v1/flavors")

    def delete_flavor(self, flavor_id: str) -> Json:
        """Delete a flavor."""
        return self._delete(f"/api/v1/flavors/{seg(flavor_id)}")

    def create_image(self, name: str, kernel_path: str, initrd_path: str | None = None, **more: Any) -> Json:
        """An image (the operator's)."""
        return self._post("/api/v1/images", fields(name=name, kernel_path=kernel_path, initrd_path=initrd_path,
                                                   **more))

    def images(self) -> Iterator[Json]:
        """The images."""
        return self._pages("/api/v1/images")

    def delete_image(self, image_id: str) -> Json:
        """Delete an image."""
        return self._delete(f"/api/v1/images/{seg(image_id)}")
