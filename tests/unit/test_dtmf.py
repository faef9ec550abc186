"""RFC 4733 receive (media/dtmf.py): one press reported exactly once, whatever the redundancy."""

from __future__ import annotations

import numpy as np
import pytest

from sentiric_media.events.broker import DTMF_RECEIVED, dtmf_received
from sentiric_media.events.bus import MediaEvent
from sentiric_media.media.dtmf import (
    DtmfPress,
    MalformedEvent,
    Rfc4733Receiver,
    build_event,
    parse_event,
)
from sentiric_media.media.dtmf_send import GAP_MS, PAUSE_MS, DtmfTones

CLOCK = 8000


def press_packets(
    digit: int, timestamp: int, duration_ms: int, start: float, *, ends: int = 3
) -> list[tuple[int, bytes, float]]:
    """(timestamp, payload, arrival) of one press: a packet every 20 ms, then `ends` ends."""
    packets = []
    steps = duration_ms // 20
    for k in range(1, steps + 1):
        end = k == steps
        duration = k * 160
        copies = ends if end else 1
        for _ in range(copies):
            packets.append((timestamp, build_event(digit, end, 10, duration), start + k * 0.02))
    return packets


def run(packets: list[tuple[int, bytes, float]], settle: float | None = None) -> list[DtmfPress]:
    presses: list[DtmfPress] = []
    receiver = Rfc4733Receiver(CLOCK, presses.append)
    for timestamp, payload, arrival in packets:
        receiver.packet(timestamp, payload, arrival)
    if settle is not None:
        receiver.check(settle)
    return presses


def test_payload_round_trip_and_malformed() -> None:
    payload = build_event(11, True, 10, 800)
    assert parse_event(payload) == (11, True, 10, 800)
    assert parse_event(build_event(5, False, 63, 65535)).duration == 65535
    with pytest.raises(MalformedEvent):
        parse_event(b"\x01\x02")


@pytest.mark.parametrize(("code", "digit"), list(enumerate("0123456789*#ABCD")))
def test_each_key_is_reported_once_with_its_duration(code: int, digit: str) -> None:
    presses = run(press_packets(code, 5000, 100, 10.0))
    assert [(p.digit, p.duration_ms) for p in presses] == [(digit, 100)]
    assert presses[0].onset == pytest.approx(10.0 + 0.02 - 20 / 1000)


def test_lost_start_packets_still_give_the_key_down_time() -> None:
    packets = press_packets(1, 5000, 120, 10.0)[3:]
    (press,) = run(packets)
    assert press.digit == "1"
    assert press.duration_ms == 120
    assert press.onset == pytest.approx(10.0 + 0.02 - 0.02, abs=1e-6)


def test_all_end_packets_lost_reports_at_the_next_press_or_after_the_timeout() -> None:
    first = [p for p in press_packets(2, 5000, 100, 10.0) if not parse_event(p[1]).end]
    second = press_packets(3, 9000, 60, 11.0)
    presses = run(first + second)
    assert [(p.digit, p.duration_ms) for p in presses] == [("2", 80), ("3", 60)]
    assert [p.digit for p in run(first, settle=10.0 + 0.08 + 0.6)] == ["2"]
    assert run(first, settle=10.0 + 0.1) == []  # not yet: it may still be held


def test_reordered_and_repeated_packets_and_the_same_key_twice() -> None:
    one = press_packets(7, 5000, 80, 10.0)
    one[0], one[1] = one[1], one[0]
    again = press_packets(7, 6600, 80, 10.3)
    presses = run(one + one[-3:] + again)
    assert [(p.digit, p.duration_ms) for p in presses] == [("7", 80), ("7", 80)]


def test_timestamp_wrap_and_non_dtmf_events() -> None:
    near_wrap = press_packets(9, 0xFFFFFF00, 60, 10.0)
    after_wrap = press_packets(4, 0x00000100, 60, 10.2)
    flash = [(0x5000, build_event(16, True, 10, 800), 10.4)]
    presses = run(near_wrap + after_wrap + flash)
    assert [p.digit for p in presses] == ["9", "4"]


def test_broker_message_of_a_digit_has_exactly_the_contract_keys() -> None:
    event = MediaEvent(
        "dtmf",
        "call-1",
        10000,
        "trace-1",
        1234,
        {"digit": "#", "duration_ms": 100, "source": "rfc4733"},
    )
    body = dtmf_received(event)
    assert set(body) == {
        "eventType",
        "traceId",
        "callId",
        "digit",
        "durationMs",
        "source",
        "timestamp",
    }
    assert body["eventType"] == DTMF_RECEIVED == "call.media.dtmf.received"
    assert (body["traceId"], body["callId"], body["digit"]) == ("trace-1", "call-1", "#")
    assert (body["durationMs"], body["source"]) == (100, "rfc4733")
    assert body["timestamp"].endswith("Z")


def test_outgoing_digits_are_whole_frames_of_two_tones_with_gaps_and_pauses() -> None:
    tones = DtmfTones(8000, 160)
    tones.add("1,#", 90)  # 90 ms rounds up to 5 frames
    frames = []
    while (frame := tones.next_frame()) is not None:
        frames.append(frame)
    kinds = "".join("t" if f.pcm is not None else "." for f in frames)
    gap, pause = "." * (GAP_MS // 20), "." * (PAUSE_MS // 20)
    assert kinds == "ttttt" + gap + pause + "ttttt" + gap
    first = frames[:5]
    assert [f.elapsed for f in first] == [160, 320, 480, 640, 800]
    assert [f.end for f in first] == [False] * 4 + [True]
    assert {f.event for f in first} == {1}
    assert {f.event for f in frames[-5 - len(gap) : -len(gap)]} == {11}
    pcm = np.concatenate([f.pcm for f in first]).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(pcm))
    peaks = sorted(np.argsort(spectrum)[-2:] * 8000 / len(pcm))
    assert peaks == pytest.approx([697, 1209], abs=10)  # "1" = 697 + 1209 Hz
    # -10 dBm0 each: two sines of amplitude 7190 add to at most ~14 400.
    assert 13000 < np.abs(pcm).max() < 14500
