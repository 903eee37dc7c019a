from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from photoncloud.api.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vpc(_message.Message):
    __slots__ = ("id", "name", "org_id", "project_id", "cidr_block", "description", "created_at", "updated_at", "vni")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CIDR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    org_id: str
    project_id: str
    cidr_block: str
    description: str
    created_at: str
    updated_at: str
    vni: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., cidr_block: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ..., vni: _Optional[int] = ...) -> None: ...

class CreateVpcRequest(_message.Message):
    __slots__ = ("name", "org_id", "project_id", "cidr_block", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CIDR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    org_id: str
    project_id: str
    cidr_block: str
    description: str
    def __init__(self, name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., cidr_block: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class GetVpcRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListVpcsRequest(_message.Message):
    __slots__ = ("org_id", "project_id", "page_size", "page_token")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    project_id: str
    page_size: int
    page_token: str
    def __init__(self, org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVpcsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Vpc]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Vpc, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateVpcRequest(_message.Message):
    __slots__ = ("id", "name", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DeleteVpcRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Pool(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class Subnet(_message.Message):
    __slots__ = ("id", "vpc_id", "name", "cidr_block", "gateway_ip", "description", "allocation_pools", "dns_servers", "ip_version", "capacity", "used", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CIDR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_IP_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_POOLS_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVERS_FIELD_NUMBER: _ClassVar[int]
    IP_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    vpc_id: str
    name: str
    cidr_block: str
    gateway_ip: str
    description: str
    allocation_pools: _containers.RepeatedCompositeFieldContainer[Pool]
    dns_servers: _containers.RepeatedScalarFieldContainer[str]
    ip_version: int
    capacity: int
    used: int
    created_at: str
    updated_at: str
    def __init__(self, id: _Optional[str] = ..., vpc_id: _Optional[str] = ..., name: _Optional[str] = ..., cidr_block: _Optional[str] = ..., gateway_ip: _Optional[str] = ..., description: _Optional[str] = ..., allocation_pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ..., dns_servers: _Optional[_Iterable[str]] = ..., ip_version: _Optional[int] = ..., capacity: _Optional[int] = ..., used: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class CreateSubnetRequest(_message.Message):
    __slots__ = ("vpc_id", "name", "cidr_block", "gateway_ip", "description", "allocation_pools", "dns_servers")
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CIDR_BLOCK_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_IP_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_POOLS_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVERS_FIELD_NUMBER: _ClassVar[int]
    vpc_id: str
    name: str
    cidr_block: str
    gateway_ip: str
    description: str
    allocation_pools: _containers.RepeatedCompositeFieldContainer[Pool]
    dns_servers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vpc_id: _Optional[str] = ..., name: _Optional[str] = ..., cidr_block: _Optional[str] = ..., gateway_ip: _Optional[str] = ..., description: _Optional[str] = ..., allocation_pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ..., dns_servers: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSubnetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListSubnetsRequest(_message.Message):
    __slots__ = ("vpc_id", "page_size", "page_token")
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vpc_id: str
    page_size: int
    page_token: str
    def __init__(self, vpc_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSubnetsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Subnet]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Subnet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteSubnetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Port(_message.Message):
    __slots__ = ("id", "subnet_id", "vpc_id", "name", "ip_address", "mac_address", "device_id", "device_type", "status", "security_group_ids", "description", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SUBNET_ID_FIELD_NUMBER: _ClassVar[int]
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    subnet_id: str
    vpc_id: str
    name: str
    ip_address: str
    mac_address: str
    device_id: str
    device_type: str
    status: str
    security_group_ids: _containers.RepeatedScalarFieldContainer[str]
    description: str
    created_at: str
    updated_at: str
    def __init__(self, id: _Optional[str] = ..., subnet_id: _Optional[str] = ..., vpc_id: _Optional[str] = ..., name: _Optional[str] = ..., ip_address: _Optional[str] = ..., mac_address: _Optional[str] = ..., device_id: _Optional[str] = ..., device_type: _Optional[str] = ..., status: _Optional[str] = ..., security_group_ids: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class CreatePortRequest(_message.Message):
    __slots__ = ("subnet_id", "name", "ip_address", "description", "security_group_ids", "device_id", "device_type")
    SUBNET_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    subnet_id: str
    name: str
    ip_address: str
    description: str
    security_group_ids: _containers.RepeatedScalarFieldContainer[str]
    device_id: str
    device_type: str
    def __init__(self, subnet_id: _Optional[str] = ..., name: _Optional[str] = ..., ip_address: _Optional[str] = ..., description: _Optional[str] = ..., security_group_ids: _Optional[_Iterable[str]] = ..., device_id: _Optional[str] = ..., device_type: _Optional[str] = ...) -> None: ...

class GetPortRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListPortsRequest(_message.Message):
    __slots__ = ("subnet_id", "vpc_id", "device_id", "page_size", "page_token")
    SUBNET_ID_FIELD_NUMBER: _ClassVar[int]
    VPC_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    subnet_id: str
    vpc_id: str
    device_id: str
    page_size: int
    page_token: str
    def __init__(self, subnet_id: _Optional[str] = ..., vpc_id: _Optional[str] = ..., device_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPortsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Port]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Port, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdatePortRequest(_message.Message):
    __slots__ = ("id", "name", "description", "security_group_ids", "update_mask")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUP_IDS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    security_group_ids: _containers.RepeatedScalarFieldContainer[str]
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., security_group_ids: _Optional[_Iterable[str]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class AttachPortRequest(_message.Message):
    __slots__ = ("id", "device_id", "device_type")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    id: str
    device_id: str
    device_type: str
    def __init__(self, id: _Optional[str] = ..., device_id: _Optional[str] = ..., device_type: _Optional[str] = ...) -> None: ...

class DetachPortRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeletePortRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("id", "direction", "protocol", "port_range_min", "port_range_max", "remote_cidr", "remote_group_id", "ethertype", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_RANGE_MIN_FIELD_NUMBER: _ClassVar[int]
    PORT_RANGE_MAX_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CIDR_FIELD_NUMBER: _ClassVar[int]
    REMOTE_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    ETHERTYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    direction: str
    protocol: str
    port_range_min: int
    port_range_max: int
    remote_cidr: str
    remote_group_id: str
    ethertype: str
    description: str
    def __init__(self, id: _Optional[str] = ..., direction: _Optional[str] = ..., protocol: _Optional[str] = ..., port_range_min: _Optional[int] = ..., port_range_max: _Optional[int] = ..., remote_cidr: _Optional[str] = ..., remote_group_id: _Optional[str] = ..., ethertype: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SecurityGroup(_message.Message):
    __slots__ = ("id", "name", "org_id", "project_id", "description", "rules", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    org_id: str
    project_id: str
    description: str
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    created_at: str
    updated_at: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., description: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class CreateSecurityGroupRequest(_message.Message):
    __slots__ = ("name", "org_id", "project_id", "description", "rules")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    name: str
    org_id: str
    project_id: str
    description: str
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, name: _Optional[str] = ..., org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., description: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class GetSecurityGroupRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListSecurityGroupsRequest(_message.Message):
    __slots__ = ("org_id", "project_id", "page_size", "page_token")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    project_id: str
    page_size: int
    page_token: str
    def __init__(self, org_id: _Optional[str] = ..., project_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSecurityGroupsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[SecurityGroup]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[SecurityGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSecurityGroupRequest(_message.Message):
    __slots__ = ("id", "name", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class DeleteSecurityGroupRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AddRuleRequest(_message.Message):
    __slots__ = ("security_group_id", "rule")
    SECURITY_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    security_group_id: str
    rule: Rule
    def __init__(self, security_group_id: _Optional[str] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class AddRuleResponse(_message.Message):
    __slots__ = ("security_group", "rule")
    SECURITY_GROUP_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    security_group: SecurityGroup
    rule: Rule
    def __init__(self, security_group: _Optional[_Union[SecurityGroup, _Mapping]] = ..., rule: _Optional[_Union[Rule, _Mapping]] = ...) -> None: ...

class DeleteRuleRequest(_message.Message):
    __slots__ = ("security_group_id", "rule_id")
    SECURITY_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    security_group_id: str
    rule_id: str
    def __init__(self, security_group_id: _Optional[str] = ..., rule_id: _Optional[str] = ...) -> None: ...

class GetNetworkStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NetworkState(_message.Message):
    __slots__ = ("applied_index", "vpcs", "subnets", "ports", "security_groups")
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    VPCS_FIELD_NUMBER: _ClassVar[int]
    SUBNETS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    applied_index: int
    vpcs: _containers.RepeatedCompositeFieldContainer[Vpc]
    subnets: _containers.RepeatedCompositeFieldContainer[Subnet]
    ports: _containers.RepeatedCompositeFieldContainer[Port]
    security_groups: _containers.RepeatedCompositeFieldContainer[SecurityGroup]
    def __init__(self, applied_index: _Optional[int] = ..., vpcs: _Optional[_Iterable[_Union[Vpc, _Mapping]]] = ..., subnets: _Optional[_Iterable[_Union[Subnet, _Mapping]]] = ..., ports: _Optional[_Iterable[_Union[Port, _Mapping]]] = ..., security_groups: _Optional[_Iterable[_Union[SecurityGroup, _Mapping]]] = ...) -> None: ...
