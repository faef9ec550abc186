"""Received key presses on the real RabbitMQ broker (`call.media.dtmf.received`) and in recordings.

The phone is a loopback UDP socket. RFC 4733 presses share the SSRC and the
sequence space of the PCMU silence the phone keeps sending every 20 ms; in-band
presses are tones in that audio, made here (ITU-T Q.23 frequencies written out,
not taken from the service). Each broker test taps its own exchange with a queue
bound to the DTMF routing key (the `broker` fixture binds only the recording and
playback keys). Without a broker these tests are skipped (failed in CI).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.media.codecs.g711 import ULAW
from sentiric_media.media.dtmf import build_event
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import allocate, rtp_packets, send_paced, send_slots
from tests.integration.test_stream_events import _offer
from tests.recording.conftest import (
    DTMF_KEY,
    BrokerMessage,
    ServiceFactory,
    TapFactory,
    free_tcp_port,
    wait_until,
)
from tests.recording.test_file_recording import rms, wav_info
from tests.recording.test_rabbitmq import (
    exactly_one,
    outbox_files,
    parse_timestamp,
    service_settings,
)
from tests.support import UdpPeer

pytestmark = pytest.mark.integration

DTMF_FIELDS = {"eventType", "traceId", "callId", "digit", "durationMs", "source", "timestamp"}
RATE = 8000
FRAME = 160  # samples (and RTP clock units) per 20 ms packet
SSRC = 0x5EED7E1
EVENT_PT = 101
FIRST_SEQUENCE, FIRST_TIMESTAMP = 1000, 5000
EVENT_CODES = "0123456789*#ABCD"  # RFC 4733 §3.2
Q23_HZ = {"5": (770.0, 1336.0), "#": (941.0, 1477.0)}
PEAK = 7150  # int16 peak of one sine at about -10 dBm0 on G.711


def new_call_id() -> str:
    return f"call-{uuid.uuid4().hex[:10]}"


def dual_tone(digit: str, ms: int) -> np.ndarray:
    low, high = Q23_HZ[digit]
    t = np.arange(RATE * ms // 1000) / RATE
    return np.rint(PEAK * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))).astype(
        np.int16
    )


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def press_slots(digit: str, *, down: int, ms: int, frames: int) -> list[tuple[int, bytes]]:
    """`frames` slots of PCMU silence with an RFC 4733 press of `digit` going down at `down`.

    The key-down is the RTP timestamp of slot `down`; slot `down + k` carries the
    event with duration k·20 ms (the last one, the end, three times). All packets
    share one SSRC and one sequence space.
    """
    steps, code = ms // 20, EVENT_CODES.index(digit)
    quiet = ULAW.encode(silence(20))
    key_down = FIRST_TIMESTAMP + down * FRAME
    slots, sequence = [], FIRST_SEQUENCE
    for slot in range(frames):
        timestamp = FIRST_TIMESTAMP + slot * FRAME
        slots.append((slot, build_rtp(0, sequence, timestamp, SSRC, quiet, slot == 0)))
        sequence += 1
        k = slot - down
        if 1 <= k <= steps:
            payload = build_event(code, k == steps, 10, k * FRAME)
            for _ in range(3 if k == steps else 1):
                slots.append((slot, build_rtp(EVENT_PT, sequence, key_down, SSRC, payload, k == 1)))
                sequence += 1
    return slots


async def negotiate(stub: media_pb2_grpc.MediaServiceStub, port: int, peer: UdpPeer) -> None:
    answer = await stub.NegotiateSdp(
        pb.NegotiateSdpRequest(
            server_rtp_port=port, remote_sdp=_offer(peer.address[1]), type=pb.SDP_TYPE_OFFER
        )
    )
    assert answer.dtmf_payload_type == EVENT_PT


def check_dtmf_message(
    message: BrokerMessage, *, call_id: str, trace_id: str, digit: str, source: str
) -> dict:
    assert message.routing_key == DTMF_KEY
    assert message.delivery_mode == 2  # persistent
    assert message.content_type == "application/json"
    body = message.body
    assert body.keys() == DTMF_FIELDS
    assert body["eventType"] == DTMF_KEY
    assert body["callId"] == call_id
    assert body["traceId"] == trace_id
    assert body["digit"] == digit
    assert body["source"] == source
    return body


async def test_rfc4733_press_is_one_exact_persistent_message(
    make_service: ServiceFactory, peer: UdpPeer, broker: TapFactory, rabbitmq_url: str
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call_id = new_call_id()
    port = await allocate(service.stub, call_id, metadata=(("x-trace-id", "trace-dtmf-7"),))
    await negotiate(service.stub, port, peer)
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # the timestamp has ms resolution
    await send_slots(peer, port, press_slots("7", down=10, ms=120, frames=26))
    message = await exactly_one(tap, DTMF_KEY, callId=call_id)
    body = check_dtmf_message(
        message, call_id=call_id, trace_id="trace-dtmf-7", digit="7", source="rfc4733"
    )
    assert body["durationMs"] == 120
    assert before <= parse_timestamp(body["timestamp"]) <= datetime.now(UTC)


async def test_inband_press_is_one_message(
    make_service: ServiceFactory, peer: UdpPeer, broker: TapFactory, rabbitmq_url: str
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call_id = new_call_id()
    port = await allocate(service.stub, call_id, metadata=(("x-trace-id", "trace-inband"),))
    audio = np.concatenate([silence(300), dual_tone("#", 100), silence(400)])
    await send_paced(peer, port, rtp_packets(audio, ssrc=SSRC))
    message = await exactly_one(tap, DTMF_KEY, callId=call_id)
    body = check_dtmf_message(
        message, call_id=call_id, trace_id="trace-inband", digit="#", source="inband"
    )
    assert abs(body["durationMs"] - 100) <= 20, body
    parse_timestamp(body["timestamp"])


@pytest.mark.slow
async def test_press_while_the_broker_is_down_waits_in_the_outbox_and_is_delivered_once(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
) -> None:
    tap = await broker()
    closed = f"amqp://guest:guest@127.0.0.1:{free_tcp_port()}/"
    down = await make_service(**service_settings(closed, tap.exchange))
    call_id = new_call_id()
    port = await allocate(down.stub, call_id, metadata=(("x-trace-id", "trace-dtmf-down"),))
    await negotiate(down.stub, port, peer)
    await send_slots(peer, port, press_slots("9", down=5, ms=100, frames=16))
    assert await wait_until(lambda: outbox_files(tmp_path), within=3)
    [waiting] = outbox_files(tmp_path)
    saved = json.loads(waiting.read_text())
    assert saved["routing_key"] == DTMF_KEY
    assert saved["body"]["digit"] == "9"
    assert saved["body"]["callId"] == call_id
    await down.stop()
    assert tap.messages == []

    # A new process with the right broker and the same spool delivers it.
    await make_service(**service_settings(rabbitmq_url, tap.exchange))
    message = await exactly_one(tap, DTMF_KEY, within=15, callId=call_id)
    body = check_dtmf_message(
        message, call_id=call_id, trace_id="trace-dtmf-down", digit="9", source="rfc4733"
    )
    assert body == saved["body"]
    assert body["durationMs"] == 100
    assert await wait_until(lambda: not outbox_files(tmp_path), within=5)


def band_energy(spectrum: np.ndarray, bins: np.ndarray, hz: float) -> float:
    return float(spectrum[np.abs(bins - hz) <= 15].sum())


async def test_rfc4733_press_is_its_tones_in_the_recordings_caller_leg(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    port = await allocate(service.stub, new_call_id())
    await negotiate(service.stub, port, peer)
    asked = time.monotonic()
    await service.stub.StartRecording(
        pb.StartRecordingRequest(server_rtp_port=port, output_uri="file://dtmf.wav", channels=2)
    )
    recording_start = (asked + time.monotonic()) / 2
    down, ms = 15, 200
    sending = time.monotonic()
    await send_slots(peer, port, press_slots("5", down=down, ms=ms, frames=40))
    await service.stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=port))

    frames, rate, channels = wav_info(tmp_path / "recordings" / "dtmf.wav")
    assert (rate, channels) == (RATE, 2)
    caller = frames[:, 0].astype(np.float64)
    loud = np.flatnonzero(np.abs(caller) > 1000)
    assert len(loud), "no tone in the caller leg"
    onset, end = int(loud[0]), int(loud[-1]) + 1
    expected = (sending + down * 0.02 - recording_start) * RATE
    assert abs(onset - expected) <= 0.060 * RATE, (onset, expected)
    assert abs((end - onset) - ms * RATE // 1000) <= 0.010 * RATE, (onset, end)

    tone = caller[onset : onset + ms * RATE // 1000]
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone)))) ** 2
    bins = np.fft.rfftfreq(len(tone), 1 / RATE)
    low, high = (band_energy(spectrum, bins, hz) for hz in Q23_HZ["5"])
    assert (low + high) / spectrum.sum() > 0.9, (low, high, spectrum.sum())
    assert abs(10 * np.log10(low / high)) <= 6, (low, high)

    rest = np.concatenate([caller[: max(onset - 40, 0)], caller[end + 40 :]])
    assert rms(rest) < 30, rms(rest)
