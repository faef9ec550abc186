"""Voice activity over real UDP and gRPC: the caller's speech is `speech_started` and
`speech_ended` on StreamEvents, stamped at the speech itself; without a subscriber no
voice activity runs."""

from __future__ import annotations

import time

import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import (
    allocate,
    drain,
    read_messages,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
)

RATE = 8000


def _utterance() -> np.ndarray:
    """1.5 s of the bundled speech, trimmed to where it is loud."""
    samples = speech()[: RATE * 3]
    loud = np.flatnonzero(np.abs(samples) > 500)
    return samples[loud[0] : loud[0] + RATE * 3 // 2]


async def test_speech_is_started_and_ended_at_its_time(service, stub, peer):
    port = await allocate(stub, "speech-events")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    session = service.manager.by_port[port]
    utterance = _utterance()
    audio = np.concatenate([np.zeros(RATE // 2, np.int16), utterance, np.zeros(RATE, np.int16)])
    sent_at = (time.monotonic() - session.created_at) * 1000
    await send_paced(peer, port, rtp_packets(audio))
    started, ended = await read_messages(call, 2, within=3)
    assert started.WhichOneof("event") == "speech_started"
    assert ended.WhichOneof("event") == "speech_ended"
    assert 0.5 <= started.speech_started.probability <= 1.0
    onset = sent_at + 500  # the utterance begins half a second into the audio
    assert abs(started.media_time_ms - onset) <= 100, (started.media_time_ms, onset)
    length_ms = len(utterance) * 1000 // RATE
    assert abs(ended.speech_ended.duration_ms - length_ms) <= 250, ended.speech_ended
    assert abs(ended.media_time_ms - started.media_time_ms - ended.speech_ended.duration_ms) <= 2
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    # Then only the emotion estimate of that speech, stamped where it began.
    rest = await drain(call)
    assert [e.WhichOneof("event") for e in rest] == ["emotion"]
    assert abs(rest[0].media_time_ms - started.media_time_ms) <= 200


async def test_no_subscriber_no_voice_activity(service, stub, peer):
    port = await allocate(stub, "speech-unheard")
    windows = service.manager.vad_bank.model_windows
    await send_paced(peer, port, rtp_packets(_utterance()[: RATE // 2]))
    session = service.manager.by_port[port]
    assert await wait_until(lambda: session.stats.packets_received >= RATE // 2 // 160, 1.0)
    assert session.vad is None
    assert service.manager.vad_bank.model_windows == windows
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
