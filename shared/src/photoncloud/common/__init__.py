"""The library every PhotonCloud service imports: errors, envelopes, request IDs, servers."""

__version__ = "0.1.0"
