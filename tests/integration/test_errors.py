"""RPCs of the contract that are not built yet answer UNIMPLEMENTED; errors stay clean.

(StartRecording and StopRecording were built after this suite was planned; they are
no longer expected to be UNIMPLEMENTED.)
"""

from __future__ import annotations

import grpc
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import allocate, rpc_error, stream_error


def _unary_requests(port: int) -> dict[str, object]:
    return {
        "GetSessionStats": pb.GetSessionStatsRequest(server_rtp_port=port),
    }


@pytest.mark.parametrize("method", ["GetSessionStats"])
async def test_unbuilt_unary_rpcs_are_unimplemented(stub, method):
    port = await allocate(stub, "err-unimpl")
    request = _unary_requests(port)[method]
    await rpc_error(getattr(stub, method)(request), grpc.StatusCode.UNIMPLEMENTED)


async def test_stream_events_on_an_unknown_port_is_not_found(stub):
    port = await allocate(stub, "err-events")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port + 2, keywords=["yes"]))
    message = await stream_error(call, grpc.StatusCode.NOT_FOUND)
    assert str(port + 2) in message


async def test_service_keeps_working_after_errors(service, stub):
    port = await allocate(stub, "err-after")
    await rpc_error(
        stub.PlayAudio(pb.PlayAudioRequest(audio_uri="http://x", server_rtp_port=port)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await rpc_error(
        stub.GetSessionStats(pb.GetSessionStatsRequest(server_rtp_port=port)),
        grpc.StatusCode.UNIMPLEMENTED,
    )
    assert await allocate(stub, "err-after-2") != port
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))).success
