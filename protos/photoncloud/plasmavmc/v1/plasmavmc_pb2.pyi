from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from photoncloud.api.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Flavor(_message.Message):
    __slots__ = ("id", "name", "vcpus", "memory_mib", "disk_gib", "price_per_hour", "description", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    price_per_hour: int
    description: str
    created_at: str
    updated_at: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., price_per_hour: _Optional[int] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class CreateFlavorRequest(_message.Message):
    __slots__ = ("name", "vcpus", "memory_mib", "disk_gib", "price_per_hour", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    price_per_hour: int
    description: str
    def __init__(self, name: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., price_per_hour: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class GetFlavorRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFlavorsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFlavorsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Flavor]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Flavor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateFlavorRequest(_message.Message):
    __slots__ = ("id", "price_per_hour", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    price_per_hour: int
    description: str
    def __init__(self, id: _Optional[str] = ..., price_per_hour: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class DeleteFlavorRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ImageFile(_message.Message):
    __slots__ = ("size_bytes", "sha256")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    sha256: str
    def __init__(self, size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class Image(_message.Message):
    __slots__ = ("id", "name", "kind", "kernel", "initrd", "disk", "disk_format", "cmdline", "size_bytes", "description", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    INITRD_FIELD_NUMBER: _ClassVar[int]
    DISK_FIELD_NUMBER: _ClassVar[int]
    DISK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: str
    kernel: ImageFile
    initrd: ImageFile
    disk: ImageFile
    disk_format: str
    cmdline: str
    size_bytes: int
    description: str
    created_at: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., kernel: _Optional[_Union[ImageFile, _Mapping]] = ..., initrd: _Optional[_Union[ImageFile, _Mapping]] = ..., disk: _Optional[_Union[ImageFile, _Mapping]] = ..., disk_format: _Optional[str] = ..., cmdline: _Optional[str] = ..., size_bytes: _Optional[int] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class RegisterImageRequest(_message.Message):
    __slots__ = ("name", "kernel_path", "initrd_path", "disk_path", "cmdline", "kernel_sha256", "initrd_sha256", "disk_sha256", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KERNEL_PATH_FIELD_NUMBER: _ClassVar[int]
    INITRD_PATH_FIELD_NUMBER: _ClassVar[int]
    DISK_PATH_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    KERNEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    INITRD_SHA256_FIELD_NUMBER: _ClassVar[int]
    DISK_SHA256_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    kernel_path: str
    initrd_path: str
    disk_path: str
    cmdline: str
    kernel_sha256: str
    initrd_sha256: str
    disk_sha256: str
    description: str
    def __init__(self, name: _Optional[str] = ..., kernel_path: _Optional[str] = ..., initrd_path: _Optional[str] = ..., disk_path: _Optional[str] = ..., cmdline: _Optional[str] = ..., kernel_sha256: _Optional[str] = ..., initrd_sha256: _Optional[str] = ..., disk_sha256: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class GetImageRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Image]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteImageRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Nic(_message.Message):
    __slots__ = ("port_id", "subnet_id", "ip_address", "mac_address")
    PORT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBNET_ID_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    port_id: str
    subnet_id: str
    ip_address: str
    mac_address: str
    def __init__(self, port_id: _Optional[str] = ..., subnet_id: _Optional[str] = ..., ip_address: _Optional[str] = ..., mac_address: _Optional[str] = ...) -> None: ...

class Vm(_message.Message):
    __slots__ = ("id", "name", "org_id", "project_id", "state", "flavor_id", "vcpus", "memory_mib", "image_id", "nics", "price_per_hour", "reservation_id", "charged", "last_error", "description", "created_at", "updated_at", "started_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_ID_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_HOUR_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    org_id: str
    project_id: str
    state: str
    flavor_id: str
    vcpus: int
    memory_mib: int
    image_id: str
    nics: _containers.RepeatedCompositeFieldContainer[Nic]
    price_per_hour: int
    reservation_id: str
    charged: int
    last_error: str
    description: str
    created_at: str
    updated_at: str
    started_at: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., state: _Optional[str] = ..., flavor_id: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., image_id: _Optional[str] = ..., nics: _Optional[_Iterable[_Union[Nic, _Mapping]]] = ..., price_per_hour: _Optional[int] = ..., reservation_id: _Optional[str] = ..., charged: _Optional[int] = ..., last_error: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., started_at: _Optional[str] = ...) -> None: ...

class CreateVmRequest(_message.Message):
    __slots__ = ("name", "org_id", "project_id", "flavor_id", "vcpus", "memory_mib", "image_id", "subnet_ids", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_ID_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SUBNET_IDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    org_id: str
    project_id: str
    flavor_id: str
    vcpus: int
    memory_mib: int
    image_id: str
    subnet_ids: _containers.RepeatedScalarFieldContainer[str]
    description: str
    def __init__(self, name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., flavor_id: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., image_id: _Optional[str] = ..., subnet_ids: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ...) -> None: ...

class GetVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListVmsRequest(_message.Message):
    __slots__ = ("org_id", "project_id", "state", "page_size", "page_token")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    project_id: str
    state: str
    page_size: int
    page_token: str
    def __init__(self, org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., state: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVmsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Vm]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Vm, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StartVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class StopVmRequest(_message.Message):
    __slots__ = ("id", "force", "timeout_seconds")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    timeout_seconds: int
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ..., timeout_seconds: _Optional[int] = ...) -> None: ...

class RebootVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class PauseVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeVmRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetConsoleRequest(_message.Message):
    __slots__ = ("id", "tail_bytes")
    ID_FIELD_NUMBER: _ClassVar[int]
    TAIL_BYTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    tail_bytes: int
    def __init__(self, id: _Optional[str] = ..., tail_bytes: _Optional[int] = ...) -> None: ...

class Console(_message.Message):
    __slots__ = ("vm_id", "output", "size_bytes", "truncated")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    output: str
    size_bytes: int
    truncated: bool
    def __init__(self, vm_id: _Optional[str] = ..., output: _Optional[str] = ..., size_bytes: _Optional[int] = ..., truncated: _Optional[bool] = ...) -> None: ...
