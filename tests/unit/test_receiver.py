"""The receive path (media/receiver.py): sequence order before decoding, loss concealment,
comfort noise and telephone-events counted as received.

A fake stateful codec records what its decoder is asked, in which order; arrival
positions come from a hand-moved clock.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sentiric_media.media.codecs import PCMU, Codec, MediaFormat
from sentiric_media.media.receiver import RtpReceiver
from sentiric_media.media.rtp import RtpHeader
from sentiric_media.media.stats import SessionStats
from sentiric_media.media.taps import CallerFrame

RATE = 8000
STEP = 160
SSRC = 0x5151
PT = 96


class RecordingDecoder:
    """Decodes payload b"n..." to 160 samples of value n; logs every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def decode(self, payload: bytes) -> np.ndarray:
        self.calls.append(("decode", payload[0]))
        return np.full(STEP, payload[0], dtype=np.int16)

    def conceal(self, samples: int) -> np.ndarray:
        self.calls.append(("conceal", samples))
        return np.full(samples, -1, dtype=np.int16)

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        if not next_payload.endswith(b"fec"):
            return None
        self.calls.append(("fec", samples))
        return np.full(samples, -2, dtype=np.int16)


class Collector:
    def __init__(self) -> None:
        self.frames: list[CallerFrame] = []

    def on_caller(self, frame: CallerFrame) -> None:
        self.frames.append(frame)

    def on_tick(self, position: int) -> None: ...

    def on_bot(self, position: int, pcm: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def values(self) -> list[int]:
        return [int(frame.pcm[0]) for frame in self.frames]


class Harness:
    """A receiver whose packet k arrives at clock position BASE + k·160 (+ a delay)."""

    BASE = 10_000

    def __init__(self, fmt: MediaFormat | None = None) -> None:
        self.now = self.BASE
        self.arrivals: list[int] = []
        self.stats = SessionStats()
        log = logging.LoggerAdapter(logging.getLogger("test"), {})
        self.receiver = RtpReceiver(
            self.stats, RATE, lambda _t, _r: self.arrivals.pop(0), log, reorder_ms=30
        )
        self.decoder = RecordingDecoder()
        if fmt is None:
            codec = Codec("X-TEST", RATE, RATE, _no_encoder, lambda _f: self.decoder)
            fmt = codec.format(PT)
        self.receiver.set_formats({fmt.payload_type: fmt}, dtmf_payload_type=101)
        self.pt = fmt.payload_type
        self.tap = Collector()

    def send(
        self, k: int, payload: bytes | None = None, pt: int | None = None, delay_ms: int = 0
    ) -> None:
        """Packet k of the stream (sequence 1000+k, timestamp 5000+k·160)."""
        body = payload if payload is not None else bytes([k % 100])
        header = RtpHeader(
            self.pt if pt is None else pt, 1000 + k, 5000 + k * STEP, SSRC, False, body
        )
        self.receive(header, self.BASE + k * STEP + RATE * delay_ms // 1000)

    def receive(self, header: RtpHeader, arrival: int) -> None:
        self.receiver.append(header)
        self.arrivals.append(arrival)

    def tick(self, k: float, listening: bool = True) -> None:
        """The clock reaches packet k's arrival position."""
        self.now = self.BASE + int(k * STEP)
        self.receiver.drain([self.tap] if listening else [], self.now)


def _no_encoder(_fmt: MediaFormat) -> object:
    raise AssertionError("the receiver never encodes")


def test_in_order_packets_are_decoded_at_once_in_order() -> None:
    h = Harness()
    for k in range(5):
        h.send(k)
        h.tick(k)
    assert h.tap.values() == [0, 1, 2, 3, 4]
    positions = [frame.position for frame in h.tap.frames]
    assert np.all(np.diff(positions) == STEP)
    assert h.stats.packets_received == 5
    assert h.stats.packets_lost == 0


def test_reordered_packets_reach_the_decoder_in_sequence_order() -> None:
    h = Harness()
    for k, delay in ((0, 0), (1, 0), (3, 0), (2, 25), (4, 0)):
        h.send(k, delay_ms=delay)
        h.tick(k + delay / 20)
    assert h.decoder.calls == [("decode", k) for k in range(5)]
    assert h.stats.concealed_samples == 0
    assert h.stats.packets_lost == 0


def test_a_single_loss_is_recovered_from_the_next_packets_fec() -> None:
    h = Harness()
    h.send(0)
    h.send(2, payload=b"\x02fec")
    h.tick(3)
    assert h.decoder.calls == [("decode", 0)]  # packet 2 waits for packet 1
    h.tick(4)  # 40 ms after packet 2, longer than the 30 ms reorder wait: 1 is lost
    assert h.decoder.calls == [("decode", 0), ("fec", STEP), ("decode", 2)]
    assert h.tap.values() == [0, -2, 2]
    assert [f.position - h.tap.frames[0].position for f in h.tap.frames] == [0, STEP, 2 * STEP]
    assert h.stats.concealed_samples == STEP
    assert h.stats.packets_lost == 1


def test_a_longer_loss_is_concealed_by_plc_for_its_exact_length() -> None:
    h = Harness()
    h.send(0)
    h.send(3, payload=b"\x03fec")  # FEC only covers the one packet before it
    h.tick(6)
    assert h.decoder.calls == [("decode", 0), ("conceal", 2 * STEP), ("decode", 3)]
    concealed = h.tap.frames[1]
    assert len(concealed.pcm) == 2 * STEP
    assert concealed.position == h.tap.frames[0].position + STEP


def test_a_packet_after_its_gap_was_concealed_is_dropped_for_a_stateful_codec() -> None:
    h = Harness()
    h.send(0)
    h.send(2)
    h.tick(5)
    h.send(1, delay_ms=80)  # arrives after its loss was concealed
    h.tick(6)
    assert [call for call in h.decoder.calls if call[0] == "decode"] == [
        ("decode", 0),
        ("decode", 2),
    ]
    assert h.stats.drops["late"] == 1


def test_g711_late_packets_are_still_decoded() -> None:
    h = Harness(PCMU.format())
    h.send(0, payload=bytes(160))
    h.send(2, payload=bytes(160))
    h.tick(5)
    h.send(1, payload=bytes(160), delay_ms=80)
    h.tick(6)
    assert len(h.tap.frames) == 3
    assert sorted(f.position for f in h.tap.frames) == [
        h.tap.frames[0].position + k * STEP for k in range(3)
    ]
    assert not h.stats.drops
    assert h.stats.concealed_samples == 0


def test_too_many_waiting_packets_give_the_gap_up_at_once() -> None:
    h = Harness()
    h.send(0)
    for k in range(2, 20):
        h.send(k, delay_ms=-20 * k)  # a burst: all arrive at once
    h.tick(0)  # no time passed, but the wait is bounded in packets too
    assert ("conceal", STEP) in h.decoder.calls or ("fec", STEP) in h.decoder.calls
    assert h.tap.values()[0] == 0
    assert h.tap.values()[-1] >= 3


@pytest.mark.parametrize("pt", [13, 101], ids=["comfort-noise", "telephone-event"])
def test_comfort_noise_and_telephone_events_count_as_received_not_decoded(pt: int) -> None:
    h = Harness()
    h.send(0)
    h.send(1, payload=b"\x01\x0a\x00\xa0", pt=pt)
    h.send(2, payload=b"\x01\x0a\x00\xa0", pt=pt)
    h.send(3)
    h.tick(3)
    assert h.decoder.calls == [("decode", 0), ("decode", 3)]
    assert h.stats.packets_received == 4
    assert h.stats.packets_lost == 0
    assert not h.stats.drops


def test_telephone_events_do_not_move_the_callers_timing() -> None:
    h = Harness()
    h.send(0)
    h.tick(0)
    # An event keeps its start timestamp for a second while arrival advances.
    for k in range(1, 50):
        event = RtpHeader(101, 1000 + k, 5000 + STEP, SSRC, k == 1, b"\x01\x0a\x00\xa0")
        h.receive(event, h.BASE + k * STEP)
        h.tick(k)
    h.send(50)
    h.tick(50)
    assert h.receiver.placement.reanchors == 0
    assert h.tap.frames[-1].position == h.tap.frames[0].position + 50 * STEP


def test_unknown_payload_types_and_duplicates_are_dropped_and_counted() -> None:
    h = Harness()
    h.send(0)
    h.send(0)
    h.send(1, pt=99)
    h.tick(1)
    assert h.stats.drops == {"duplicate": 1, "unsupported_payload_type": 1}
    assert h.decoder.calls == [("decode", 0)]


def test_a_new_ssrc_decodes_what_the_old_stream_left_then_starts_over() -> None:
    h = Harness()
    h.send(0)
    h.send(2)
    h.tick(2)
    h.receive(RtpHeader(PT, 7, 900, SSRC + 1, True, b"\x07"), h.BASE + 3 * STEP)
    h.tick(3)
    assert h.decoder.calls == [("decode", 0), ("decode", 2), ("decode", 7)]


def test_nothing_is_decoded_while_no_tap_listens_and_a_later_tap_gets_a_fresh_decoder() -> None:
    h = Harness()
    decoders = []
    codec = Codec("X-TEST", RATE, RATE, _no_encoder, lambda _f: decoders.append(1) or h.decoder)
    h.receiver.set_formats({PT: codec.format(PT)}, dtmf_payload_type=None)
    for k in range(3):
        h.send(k)
        h.tick(k, listening=False)
    assert h.decoder.calls == []
    assert h.stats.packets_received == 3
    h.send(3)
    h.tick(3)
    assert h.decoder.calls == [("decode", 3)]
    assert len(decoders) == 1
