from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from photoncloud.api.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Wallet(_message.Message):
    __slots__ = ("project_id", "org_id", "status", "balance", "reserved", "available", "created_at", "updated_at")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    org_id: str
    status: str
    balance: int
    reserved: int
    available: int
    created_at: str
    updated_at: str
    def __init__(self, project_id: _Optional[str] = ..., org_id: _Optional[str] = ..., status: _Optional[str] = ..., balance: _Optional[int] = ..., reserved: _Optional[int] = ..., available: _Optional[int] = ..., created_at: _Optional[str] = ..., updated_at: _Optional[str] = ...) -> None: ...

class CreateWalletRequest(_message.Message):
    __slots__ = ("project_id", "org_id", "initial_balance")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    INITIAL_BALANCE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    org_id: str
    initial_balance: int
    def __init__(self, project_id: _Optional[str] = ..., org_id: _Optional[str] = ..., initial_balance: _Optional[int] = ...) -> None: ...

class GetWalletRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListWalletsRequest(_message.Message):
    __slots__ = ("org_id", "page_size", "page_token")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    page_size: int
    page_token: str
    def __init__(self, org_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWalletsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Wallet]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Wallet, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateWalletRequest(_message.Message):
    __slots__ = ("project_id", "status")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    status: str
    def __init__(self, project_id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class TopUpRequest(_message.Message):
    __slots__ = ("project_id", "amount", "description")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    amount: int
    description: str
    def __init__(self, project_id: _Optional[str] = ..., amount: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class Posting(_message.Message):
    __slots__ = ("account", "amount")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    amount: int
    def __init__(self, account: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("id", "project_id", "type", "amount", "description", "reservation_id", "postings", "balance_after", "reserved_after", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    POSTINGS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    project_id: str
    type: str
    amount: int
    description: str
    reservation_id: str
    postings: _containers.RepeatedCompositeFieldContainer[Posting]
    balance_after: int
    reserved_after: int
    created_at: str
    def __init__(self, id: _Optional[int] = ..., project_id: _Optional[str] = ..., type: _Optional[str] = ..., amount: _Optional[int] = ..., description: _Optional[str] = ..., reservation_id: _Optional[str] = ..., postings: _Optional[_Iterable[_Union[Posting, _Mapping]]] = ..., balance_after: _Optional[int] = ..., reserved_after: _Optional[int] = ..., created_at: _Optional[str] = ...) -> None: ...

class TopUpResponse(_message.Message):
    __slots__ = ("wallet", "transaction")
    WALLET_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_FIELD_NUMBER: _ClassVar[int]
    wallet: Wallet
    transaction: Transaction
    def __init__(self, wallet: _Optional[_Union[Wallet, _Mapping]] = ..., transaction: _Optional[_Union[Transaction, _Mapping]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("project_id", "type", "reservation_id", "since", "until", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    type: str
    reservation_id: str
    since: str
    until: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., type: _Optional[str] = ..., reservation_id: _Optional[str] = ..., since: _Optional[str] = ..., until: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Transaction]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Transaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WalletMismatch(_message.Message):
    __slots__ = ("project_id", "balance", "reserved", "ledger_balance", "ledger_reserved")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    LEDGER_BALANCE_FIELD_NUMBER: _ClassVar[int]
    LEDGER_RESERVED_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    balance: int
    reserved: int
    ledger_balance: int
    ledger_reserved: int
    def __init__(self, project_id: _Optional[str] = ..., balance: _Optional[int] = ..., reserved: _Optional[int] = ..., ledger_balance: _Optional[int] = ..., ledger_reserved: _Optional[int] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("ok", "transactions", "wallets", "unbalanced_transactions", "mismatches", "revenue", "issued")
    OK_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    WALLETS_FIELD_NUMBER: _ClassVar[int]
    UNBALANCED_TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    transactions: int
    wallets: int
    unbalanced_transactions: _containers.RepeatedScalarFieldContainer[int]
    mismatches: _containers.RepeatedCompositeFieldContainer[WalletMismatch]
    revenue: int
    issued: int
    def __init__(self, ok: _Optional[bool] = ..., transactions: _Optional[int] = ..., wallets: _Optional[int] = ..., unbalanced_transactions: _Optional[_Iterable[int]] = ..., mismatches: _Optional[_Iterable[_Union[WalletMismatch, _Mapping]]] = ..., revenue: _Optional[int] = ..., issued: _Optional[int] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("id", "project_id", "amount", "description", "resource_type", "quantity", "status", "created_at", "expires_at", "resolved_at", "actual_amount", "resource_id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    amount: int
    description: str
    resource_type: str
    quantity: int
    status: str
    created_at: str
    expires_at: str
    resolved_at: str
    actual_amount: int
    resource_id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., amount: _Optional[int] = ..., description: _Optional[str] = ..., resource_type: _Optional[str] = ..., quantity: _Optional[int] = ..., status: _Optional[str] = ..., created_at: _Optional[str] = ..., expires_at: _Optional[str] = ..., resolved_at: _Optional[str] = ..., actual_amount: _Optional[int] = ..., resource_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("project_id", "amount", "description", "resource_type", "ttl_seconds", "quantity")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    amount: int
    description: str
    resource_type: str
    ttl_seconds: int
    quantity: int
    def __init__(self, project_id: _Optional[str] = ..., amount: _Optional[int] = ..., description: _Optional[str] = ..., resource_type: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReservationResponse(_message.Message):
    __slots__ = ("reservation", "wallet")
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    WALLET_FIELD_NUMBER: _ClassVar[int]
    reservation: Reservation
    wallet: Wallet
    def __init__(self, reservation: _Optional[_Union[Reservation, _Mapping]] = ..., wallet: _Optional[_Union[Wallet, _Mapping]] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("project_id", "status", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    status: str
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., status: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("items", "next_page_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Reservation]
    next_page_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("id", "actual_amount", "resource_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    actual_amount: int
    resource_id: str
    def __init__(self, id: _Optional[str] = ..., actual_amount: _Optional[int] = ..., resource_id: _Optional[str] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Quota(_message.Message):
    __slots__ = ("project_id", "resource_type", "limit", "usage", "updated_at")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    resource_type: str
    limit: int
    usage: int
    updated_at: str
    def __init__(self, project_id: _Optional[str] = ..., resource_type: _Optional[str] = ..., limit: _Optional[int] = ..., usage: _Optional[int] = ..., updated_at: _Optional[str] = ...) -> None: ...

class SetQuotaRequest(_message.Message):
    __slots__ = ("project_id", "resource_type", "limit")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    resource_type: str
    limit: int
    def __init__(self, project_id: _Optional[str] = ..., resource_type: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetQuotaRequest(_message.Message):
    __slots__ = ("project_id", "resource_type")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    resource_type: str
    def __init__(self, project_id: _Optional[str] = ..., resource_type: _Optional[str] = ...) -> None: ...

class ListQuotasRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListQuotasResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Quota]
    def __init__(self, items: _Optional[_Iterable[_Union[Quota, _Mapping]]] = ...) -> None: ...

class FreeQuotaRequest(_message.Message):
    __slots__ = ("project_id", "resource_type", "quantity")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    resource_type: str
    quantity: int
    def __init__(self, project_id: _Optional[str] = ..., resource_type: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class CheckAdmissionRequest(_message.Message):
    __slots__ = ("project_id", "amount", "resource_type", "quantity")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    amount: int
    resource_type: str
    quantity: int
    def __init__(self, project_id: _Optional[str] = ..., amount: _Optional[int] = ..., resource_type: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class Admission(_message.Message):
    __slots__ = ("allowed", "reason", "available", "quota_limit", "quota_usage")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    QUOTA_LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUOTA_USAGE_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    available: int
    quota_limit: int
    quota_usage: int
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., available: _Optional[int] = ..., quota_limit: _Optional[int] = ..., quota_usage: _Optional[int] = ...) -> None: ...
