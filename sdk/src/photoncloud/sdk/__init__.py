"""PhotonCloud's Python SDK: `Client` over the seven REST APIs; every error is an `ApiError`."""

from .auth import SharedTokens, TokenManager, Tokens
from .client import Client
from .endpoints import Endpoints
from .errors import ApiError
from .kv import value_of

__all__ = ["ApiError", "Client", "Endpoints", "SharedTokens", "TokenManager", "Tokens", "value_of"]
