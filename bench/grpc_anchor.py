"""The anchor the gRPC benchmarks compare against: etcd's KV Put and Range on a bare grpc.aio server.

Keys live in a dict: no interceptor, no authentication, no store, no fsync, no thread. What a
Python grpc.aio server and the machine can do for one call, so that ChainFire's figures (and
etcd's) read against the floor the transport sets. bench/etcd_compare.py starts it with `start()`
and measures it with the same client, in the same run, as the two systems.

    .venv/bin/python bench/grpc_anchor.py 50099       # serve it by hand on 127.0.0.1:50099
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc

from photoncloud.etcd.v3 import kv_pb2 as mvccpb
from photoncloud.etcd.v3 import rpc_pb2 as pb
from photoncloud.etcd.v3 import rpc_pb2_grpc as pb_grpc


class KV(pb_grpc.KVServicer):
    """Put, Range of one key, and Txn of puts, over a dict."""

    def __init__(self) -> None:
        self.revision = 0
        self.keys: dict[bytes, mvccpb.KeyValue] = {}

    def _put(self, request: pb.PutRequest) -> None:
        self.revision += 1
        old = self.keys.get(request.key)
        self.keys[request.key] = mvccpb.KeyValue(
            key=request.key, value=request.value, mod_revision=self.revision, version=old.version + 1 if old else 1,
            create_revision=old.create_revision if old else self.revision)

    async def Put(self, request: pb.PutRequest, context: grpc.aio.ServicerContext) -> pb.PutResponse:
        self._put(request)
        return pb.PutResponse(header=pb.ResponseHeader(revision=self.revision))

    async def Range(self, request: pb.RangeRequest, context: grpc.aio.ServicerContext) -> pb.RangeResponse:
        kv = self.keys.get(request.key)
        return pb.RangeResponse(header=pb.ResponseHeader(revision=self.revision), kvs=[kv] if kv else [],
                                count=1 if kv else 0)

    async def Txn(self, request: pb.TxnRequest, context: grpc.aio.ServicerContext) -> pb.TxnResponse:
        for op in request.success:
            self._put(op.request_put)
        return pb.TxnResponse(header=pb.ResponseHeader(revision=self.revision), succeeded=True)


class Maintenance(pb_grpc.MaintenanceServicer):
    """Status, so that the benchmark sees a leader."""

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        return pb.StatusResponse(header=pb.ResponseHeader(), leader=1)


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:port until killed."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_KVServicer_to_server(KV(), server)
    pb_grpc.add_MaintenanceServicer_to_server(Maintenance(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def start(port: int) -> subprocess.Popen[bytes]:
    """The anchor in its own process on 127.0.0.1:port (the caller waits until it answers)."""
    return subprocess.Popen([sys.executable, str(Path(__file__)), str(port)])


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
