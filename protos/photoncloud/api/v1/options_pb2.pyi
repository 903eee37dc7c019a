from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
METHOD_FIELD_NUMBER: _ClassVar[int]
method: _descriptor.FieldDescriptor

class Method(_message.Message):
    __slots__ = ("who", "permission", "summary", "status")
    WHO_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    who: str
    permission: str
    summary: str
    status: int
    def __init__(self, who: _Optional[str] = ..., permission: _Optional[str] = ..., summary: _Optional[str] = ..., status: _Optional[int] = ...) -> None: ...
