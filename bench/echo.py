"""The Python gRPC ceiling: a grpc.aio echo server with nothing behind it.

    python -m bench.echo --port P

One unary method, ``/bench.Echo/Echo``, registered through a generic handler
with no serializers, so request and reply are raw bytes: the server returns
what it got. It runs on uvloop with tristore's server options, so a client
driving it measures what one Python gRPC process can answer at best.
bench/compare.py starts it as its own subprocess and stops it with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
import uvloop

from tristore.server import SERVER_OPTIONS

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


async def serve(port: int) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise SystemExit(f"echo: cannot listen on 127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    uvloop.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
