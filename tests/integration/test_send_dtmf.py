"""SendDtmf: RFC 4733 to a peer that negotiated telephone-event (checked with this file's
own parser), in-band Q.23 tones otherwise; prompts pause meanwhile; every bad input named."""

from __future__ import annotations

import struct

import grpc
import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import allocate, decoded, play, rpc_error, speech, wav_uri

_HEADER = struct.Struct("!BBHII")


def _offer(peer_port: int, with_events: bool) -> str:
    formats = "0 101" if with_events else "0"
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=audio {peer_port} RTP/AVP {formats}",
        "a=rtpmap:0 PCMU/8000",
    ]
    if with_events:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    return "\r\n".join(lines) + "\r\n"


async def _negotiated(stub, peer, call_id: str, with_events: bool) -> int:
    port = await allocate(stub, call_id)
    await stub.NegotiateSdp(
        pb.NegotiateSdpRequest(
            server_rtp_port=port, remote_sdp=_offer(peer.address[1], with_events), type=1
        )
    )
    return port


def _packets(peer) -> list[tuple[int, bool, int, int, bytes]]:
    """(payload type, marker, sequence, timestamp, payload) by this test's own parsing."""
    out = []
    for _, data in peer.raw:
        _, second, sequence, timestamp, _ = _HEADER.unpack_from(data)
        out.append((second & 0x7F, bool(second & 0x80), sequence, timestamp, data[12:]))
    return out


async def test_rfc4733_events_to_a_peer_that_negotiated_them(stub, peer):
    port = await _negotiated(stub, peer, "dtmf-rfc4733", with_events=True)
    assert (await stub.SendDtmf(pb.SendDtmfRequest(server_rtp_port=port, digits="1#"))).success
    await peer.wait_for_packets(16, timeout=3)
    await peer.wait_quiet(0.3, timeout=3)
    packets = _packets(peer)
    assert {p[0] for p in packets} == {101}
    sequences = [p[2] for p in packets]
    assert sequences == list(range(sequences[0], sequences[0] + len(packets)))  # one stream
    by_digit: dict[int, list] = {}
    for _, marker, _, timestamp, payload in packets:
        by_digit.setdefault(timestamp, []).append((marker, payload))
    assert len(by_digit) == 2
    for (_, items), code in zip(sorted(by_digit.items()), (1, 11), strict=True):
        events = [struct.unpack("!BBH", payload) for _, payload in items]
        assert [marker for marker, _ in items] == [True] + [False] * (len(items) - 1)
        assert {event for event, _, _ in events} == {code}
        durations = [duration for _, _, duration in events]
        assert durations == [160, 320, 480, 640, 800, 800, 800]  # 100 ms, end sent 3 times
        assert [bool(flags & 0x80) for _, flags, _ in events] == [False] * 4 + [True] * 3
    first, second = sorted(by_digit)
    assert (second - first) >= 800 + 400  # digit, then at least a 50 ms gap


async def test_inband_tones_when_no_telephone_event_and_the_prompt_resumes(stub, peer):
    port = await _negotiated(stub, peer, "dtmf-inband", with_events=False)
    prompt = speech()[:4000]
    assert (await play(stub, port, wav_uri(prompt), peer.address_text)).success
    assert (await stub.SendDtmf(pb.SendDtmfRequest(server_rtp_port=port, digits="5"))).success
    await peer.wait_quiet(0.4, timeout=5)
    assert {p[0] for p in _packets(peer)} == {0}
    audio = decoded(peer).astype(np.float64)
    # The whole prompt still plays, with the 100 ms tone (and its gap) in it.
    assert len(audio) >= len(prompt) + 800
    # Somewhere in it, an 80 ms stretch whose energy is almost all 770 + 1336 Hz ("5").
    window, best = 640, 0.0
    freqs = np.fft.rfftfreq(window, 1 / 8000)
    keys = (np.abs(freqs - 770) < 20) | (np.abs(freqs - 1336) < 20)
    for start in range(0, len(audio) - window, 80):
        power = np.abs(np.fft.rfft(audio[start : start + window] * np.hanning(window))) ** 2
        if power.sum() > 0:
            best = max(best, float(power[keys].sum() / power.sum()))
    assert best > 0.9, best


async def test_bad_digits_durations_and_ports_are_named(stub, peer):
    port = await _negotiated(stub, peer, "dtmf-errors", with_events=True)

    async def send(digits: str, duration: int = 0, on: int = port):
        request = pb.SendDtmfRequest(server_rtp_port=on, digits=digits, duration_ms=duration)
        return stub.SendDtmf(request)

    assert "'x'" in await rpc_error(await send("12x"), grpc.StatusCode.INVALID_ARGUMENT)
    assert "''" in await rpc_error(await send(""), grpc.StatusCode.INVALID_ARGUMENT)
    for duration in (30, 2001):
        message = await rpc_error(await send("1", duration), grpc.StatusCode.INVALID_ARGUMENT)
        assert str(duration) in message
    assert str(port + 2) in await rpc_error(await send("1", on=port + 2), grpc.StatusCode.NOT_FOUND)
