"""The floor under `RecordAudio`: what grpc.aio alone costs per streamed message.

A bare grpc.aio server (no media) streams 640-byte `RecordAudioResponse`s to N
readers at 50 messages/s each, pinned to CPU 0; the readers run in another
process on CPU 1. Prints the server's CPU per message.

    .venv/bin/python -m bench.grpc_floor --streams 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import time

import grpc
import uvloop

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc as pb_grpc

PAYLOAD = bytes(640)


class FloorServicer(pb_grpc.MediaServiceServicer):
    async def RecordAudio(self, request, context):  # noqa: N802 - the contract's name
        start, index = time.monotonic(), 0
        while True:
            index += 1
            delay = start + index * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield pb.RecordAudioResponse(audio_data=PAYLOAD, media_type="audio/L16;rate=16000")


async def _serve(port: int, seconds: float) -> None:
    server = grpc.aio.server()
    pb_grpc.add_MediaServiceServicer_to_server(FloorServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await asyncio.sleep(seconds)
    await server.stop(0)


def _server_process(port: int, seconds: float) -> None:
    os.sched_setaffinity(0, {0})
    uvloop.run(_serve(port, seconds))


def _reader_process(port: int, streams: int, seconds: float) -> None:
    os.sched_setaffinity(0, {1})

    async def read(stub: pb_grpc.MediaServiceStub) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for _ in stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=1)):
                pass

    async def main() -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.MediaServiceStub(channel)
            tasks = [asyncio.create_task(read(stub)) for _ in range(streams)]
            await asyncio.sleep(seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    uvloop.run(main())


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    total = args.seconds + 6
    server = multiprocessing.Process(target=_server_process, args=(port, total))
    server.start()
    time.sleep(1)
    readers = multiprocessing.Process(target=_reader_process, args=(port, args.streams, total - 2))
    readers.start()
    time.sleep(3)
    before, began = _cpu_seconds(server.pid), time.monotonic()
    time.sleep(args.seconds)
    used, elapsed = _cpu_seconds(server.pid) - before, time.monotonic() - began
    messages = args.streams * 50 * elapsed
    print(
        f"{args.streams} streams × 50 msg/s: server CPU {100 * used / elapsed:.0f} %, "
        f"{used / messages * 1e6:.1f} µs per message"
    )
    readers.join()
    server.join()


if __name__ == "__main__":
    main()
