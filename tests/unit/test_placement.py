"""Caller audio placement (media/placement.py): RTP timestamp + offset, offset = smallest transit.

Arrival times are positions in samples at 8000 Hz on the session clock. A packet's
"true" position is when it was sent plus the network's smallest one-way delay
(`BASE`); jitter may only ever make a packet late, never move the speech.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from sentiric_media.media.placement import CallerPlacement

RATE = 8000
STEP = 160  # 20 ms packets
BASE = 400  # smallest one-way delay, 50 ms
SSRC = 0x11223344
SETTLE = RATE * 2 // 1000  # the 2 ms `settle_ms` default
MS = RATE // 1000


def test_perfect_stream_positions_equal_arrivals() -> None:
    placement = CallerPlacement(RATE)
    ts0 = 987654
    for k in range(500):
        arrival = 12345 + BASE + k * STEP
        assert placement.place(SSRC, ts0 + k * STEP, k == 0, arrival) == arrival
    assert placement.reanchors == 0


def test_lost_packets_leave_a_gap_at_the_right_place() -> None:
    placement = CallerPlacement(RATE)
    for k in range(200):
        if k % 7 in (2, 3):
            continue
        arrival = BASE + k * STEP
        assert placement.place(SSRC, 5000 + k * STEP, False, arrival) == arrival


def test_scale_maps_rtp_clock_to_session_rate() -> None:
    # G.722: RTP clock 8000 Hz, audio and session at 16000 Hz.
    placement = CallerPlacement(16000, clock_rate=8000)
    for k in range(300):
        arrival = 800 + k * 320
        assert placement.place(SSRC, 1000 + k * 160, False, arrival) == arrival


def test_random_delay_only_makes_packets_late() -> None:
    rng = random.Random(42)
    placement = CallerPlacement(RATE)
    count = 3000
    packets = [(k * STEP + BASE + rng.randint(0, 60 * MS), k) for k in range(count)]
    packets.sort()  # arrival order: 0-60 ms of jitter reorders 20 ms packets
    smallest_extra = None
    for arrival, k in packets:
        extra = arrival - (k * STEP + BASE)
        smallest_extra = extra if smallest_extra is None else min(smallest_extra, extra)
        position = placement.place(SSRC, 4242 + k * STEP, False, arrival)
        # The offset is the smallest transit seen so far, to within `settle`.
        error = position - (k * STEP + BASE + smallest_extra)
        assert 0 <= error <= SETTLE, f"packet {k}: {error} samples"
    assert placement.reanchors == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jitter_with_some_fast_packets_places_within_settle(seed: int) -> None:
    # Most packets are delayed 0-60 ms; about one in five takes the fastest path.
    rng = random.Random(seed)
    placement = CallerPlacement(RATE)
    packets = []
    for k in range(2500):
        extra = 0 if rng.random() < 0.2 else rng.randint(0, 60 * MS)
        packets.append((k * STEP + BASE + extra, k))
    packets.sort()
    for arrival, k in packets:
        position = placement.place(SSRC, 77 + k * STEP, False, arrival)
        if arrival >= RATE + BASE:  # after the first second
            assert abs(position - (k * STEP + BASE)) <= SETTLE, f"packet {k}"


def test_reordering_does_not_move_audio() -> None:
    placement = CallerPlacement(RATE)
    order = []
    for k in range(0, 400, 2):
        # Packet k+1 overtakes packet k, which arrives one packet time late.
        order.append((k + 1, (k + 1) * STEP + BASE))
        order.append((k, k * STEP + BASE + STEP + 1))
    # The very first packet to arrive (k = 1) sets the anchor on time.
    for k, arrival in order:
        assert placement.place(SSRC, 3000 + k * STEP, False, arrival) == k * STEP + BASE


def test_first_packet_late_then_offset_moves_down() -> None:
    placement = CallerPlacement(RATE)
    assert placement.place(SSRC, 0, True, BASE + 30 * MS) == BASE + 30 * MS
    for k in range(1, 100):
        position = placement.place(SSRC, k * STEP, False, k * STEP + BASE)
        assert position == k * STEP + BASE


def test_small_improvements_are_ignored() -> None:
    # A packet only 1 ms faster than the model does not move the offset (no tiny clicks).
    placement = CallerPlacement(RATE)
    placement.place(SSRC, 0, True, BASE)
    assert placement.place(SSRC, STEP, False, STEP + BASE - MS) == STEP + BASE
    assert placement.offset == BASE


def test_timestamp_wrap_around() -> None:
    placement = CallerPlacement(RATE)
    ts0 = (1 << 32) - 20 * STEP
    positions = []
    for k in range(100):
        arrival = BASE + k * STEP
        timestamp = (ts0 + k * STEP) % (1 << 32)
        positions.append(placement.place(SSRC, timestamp, False, arrival))
        assert positions[-1] == arrival
    assert placement.reanchors == 0
    assert np.all(np.diff(positions) == STEP)


def test_reordered_packets_across_the_timestamp_wrap() -> None:
    placement = CallerPlacement(RATE)
    ts0 = (1 << 32) - 2 * STEP
    order = [0, 1, 3, 2, 4, 5]  # packet 2 (first after the wrap) arrives after packet 3
    for k in order:
        arrival = BASE + k * STEP + (STEP if k == 2 else 0)
        position = placement.place(SSRC, (ts0 + k * STEP) % (1 << 32), False, arrival)
        assert position == BASE + k * STEP


def test_ssrc_change_reanchors_to_the_new_arrival() -> None:
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, 1000 + k * STEP, False, BASE + k * STEP)
    arrival = BASE + 50 * STEP + 3 * RATE
    new_ts = 0xFFFF0000
    assert placement.place(0x99, new_ts, True, arrival) == arrival
    assert placement.reanchors == 1
    for k in range(1, 50):
        position = placement.place(0x99, (new_ts + k * STEP) % (1 << 32), False, arrival + k * STEP)
        assert position == arrival + k * STEP
    assert placement.reanchors == 1


def test_marker_after_silence_without_timestamp_advance_reanchors() -> None:
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, k * STEP, False, BASE + k * STEP)
    # 500 ms of silence; the sender's timestamps did not count it.
    arrival = BASE + 50 * STEP + 500 * MS
    assert placement.place(SSRC, 50 * STEP, True, arrival) == arrival
    assert placement.reanchors == 1
    for k in range(1, 20):
        assert (
            placement.place(SSRC, (50 + k) * STEP, False, arrival + k * STEP) == arrival + k * STEP
        )


def test_marker_after_silence_with_matching_timestamps_does_not_reanchor() -> None:
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, k * STEP, False, BASE + k * STEP)
    # 500 ms of silence that the timestamps did count: nothing to correct.
    gap_packets = 25
    k = 50 + gap_packets
    late = 3 * MS  # the talk-spurt's first packet is a little late
    assert placement.place(SSRC, k * STEP, True, BASE + k * STEP + late) == BASE + k * STEP
    assert placement.reanchors == 0


def test_marker_without_silence_does_not_reanchor() -> None:
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, k * STEP, False, BASE + k * STEP)
    # A marker on a packet that is 10 ms late but follows without a pause.
    assert placement.place(SSRC, 50 * STEP, True, BASE + 50 * STEP + 10 * MS) == BASE + 50 * STEP
    assert placement.reanchors == 0


@pytest.mark.parametrize("jump_seconds", [1.5, 10.0, -2.0])
def test_timestamp_jump_beyond_one_second_reanchors(jump_seconds: float) -> None:
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, 100_000 + k * STEP, False, BASE + k * STEP)
    jumped = 100_000 + 50 * STEP + int(jump_seconds * RATE)
    arrival = BASE + 50 * STEP
    assert placement.place(SSRC, jumped, False, arrival) == arrival
    assert placement.reanchors == 1
    for k in range(1, 20):
        assert placement.place(SSRC, jumped + k * STEP, False, arrival + k * STEP) == (
            arrival + k * STEP
        )


def test_long_stall_reanchors() -> None:
    # The sender stopped for 3 s without marker while timestamps stood still.
    placement = CallerPlacement(RATE)
    for k in range(50):
        placement.place(SSRC, k * STEP, False, BASE + k * STEP)
    arrival = BASE + 50 * STEP + 3 * RATE
    assert placement.place(SSRC, 50 * STEP, False, arrival) == arrival
    assert placement.reanchors == 1


@pytest.mark.parametrize("ppm", [100, -100])
def test_sender_clock_drift_over_an_hour(ppm: int) -> None:
    """Acceptance: ±100 ppm sender clock, 0-20 ms jitter, one hour: error ≤ 10 ms."""
    count = 180_000  # one hour of 20 ms packets
    rng = np.random.default_rng(1000 + ppm)
    # Packet k leaves at the sender's sample 160·k; on our clock that is 160·k/(1+ppm).
    sent = np.arange(count) * STEP / (1 + ppm * 1e-6)
    arrivals = np.floor(sent + BASE + rng.uniform(0, 20 * MS, count)).astype(np.int64)
    ts0 = (1 << 32) - 1_000_000  # wraps after about two minutes
    timestamps = (ts0 + np.arange(count, dtype=np.int64) * STEP) % (1 << 32)
    placement = CallerPlacement(RATE)
    place = placement.place
    positions = np.fromiter(
        (
            place(SSRC, ts, False, arrival)
            for ts, arrival in zip(timestamps.tolist(), arrivals.tolist(), strict=True)
        ),
        dtype=np.float64,
        count=count,
    )
    error = positions - (sent + BASE)
    # The first packet's own delay (≤ 20 ms) cannot be known; after a second it is.
    assert np.abs(error[:50]).max() <= 20 * MS
    settled = np.abs(error[50:])
    worst = int(np.argmax(settled)) + 50
    assert settled.max() <= 10 * MS, f"{error[worst] / MS:.2f} ms at packet {worst}"
    # The drift of the whole hour (±360 ms) was followed, not accumulated.
    assert abs(error[-1]) <= 10 * MS
