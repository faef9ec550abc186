"""Receive statistics (media/rtpstats.py): RFC 3550 A.1 sequence numbers and A.8 jitter."""

from __future__ import annotations

import random

import pytest

from sentiric_media.media.rtpstats import (
    DUPLICATE,
    MAX_DROPOUT,
    UNCONFIRMED_JUMP,
    ReceiveStats,
)


def feed(stats: ReceiveStats, sequences: list[int], transit: int = 0) -> list[int]:
    return [stats.update(seq % 65536, transit) for seq in sequences]


def test_first_packet() -> None:
    stats = ReceiveStats(1000)
    assert stats.update(1000, 0) == 1000
    assert (stats.received, stats.expected, stats.lost) == (1, 1, 0)


def test_in_order_stream_wrapping_many_times_loses_nothing() -> None:
    start = 65000
    stats = ReceiveStats(start)
    for k in range(200_000):
        extended = stats.update((start + k) & 0xFFFF, 0)
        assert extended == start + k
    assert stats.received == 200_000
    assert stats.expected == 200_000
    assert stats.lost == 0
    assert stats.cycles == ((start + 199_999) >> 16) << 16
    assert stats.duplicates == 0


def test_wrap_from_65535_to_0() -> None:
    stats = ReceiveStats(65534)
    assert feed(stats, [65534, 65535, 65536, 65537]) == [65534, 65535, 65536, 65537]
    assert stats.lost == 0


def test_losses_are_counted() -> None:
    stats = ReceiveStats(10)
    sequences = [s for s in range(10, 1010) if s % 10 != 3]  # every tenth packet lost
    feed(stats, sequences)
    assert stats.expected == 1000
    assert stats.received == 900
    assert stats.lost == 100


def test_losses_across_the_wrap_are_counted() -> None:
    stats = ReceiveStats(65530)
    feed(stats, [65530, 65531, 65534, 65535, 65538, 65539])
    assert stats.expected == 10
    assert stats.lost == 4


def test_reordering_is_not_loss() -> None:
    rng = random.Random(3)
    sequences = list(range(60000, 60000 + 20000))
    for i in range(0, len(sequences) - 5, 5):
        window = sequences[i : i + 5]
        rng.shuffle(window)
        sequences[i : i + 5] = window
    stats = ReceiveStats(sequences[0] % 65536)
    results = feed(stats, sequences)
    assert sorted(results) == list(range(60000, 80000))
    assert stats.lost == 0
    assert stats.received == 20000
    assert stats.duplicates == 0


def test_late_packet_from_before_the_wrap_gets_its_extended_number() -> None:
    stats = ReceiveStats(65533)
    results = feed(stats, [65533, 65534, 65536, 65537, 65535])
    assert results == [65533, 65534, 65536, 65537, 65535]
    assert stats.lost == 0


def test_duplicates_are_returned_as_duplicate_and_counted() -> None:
    stats = ReceiveStats(100)
    results = feed(stats, [100, 101, 101, 102, 100, 102, 103])
    assert results == [100, 101, DUPLICATE, 102, DUPLICATE, DUPLICATE, 103]
    assert stats.duplicates == 3
    assert stats.received == 4
    assert stats.lost == 0


def test_duplicate_across_the_wrap() -> None:
    stats = ReceiveStats(65535)
    assert feed(stats, [65535, 0, 65535, 0]) == [65535, 65536, DUPLICATE, DUPLICATE]


def test_same_sequence_one_cycle_later_is_not_a_duplicate() -> None:
    stats = ReceiveStats(0)
    results = feed(stats, list(range(0, 65536 + 10)))
    assert DUPLICATE not in results
    assert stats.received == 65546


def test_large_jump_needs_confirmation() -> None:
    stats = ReceiveStats(1000)
    feed(stats, range(1000, 1100))
    assert stats.update(30000, 0) == UNCONFIRMED_JUMP
    assert stats.received == 100  # the unconfirmed packet is not counted
    # The stream goes on where it was: the stray packet is forgotten.
    assert stats.update(1100, 0) == 1100
    assert stats.restarts == 0
    assert stats.lost == 0


def test_confirmed_jump_restarts_the_count() -> None:
    stats = ReceiveStats(1000)
    feed(stats, range(1000, 1100))
    assert stats.update(30000, 0) == UNCONFIRMED_JUMP
    assert stats.update(30001, 0) == 30001
    assert stats.restarts == 1
    assert stats.update(30002, 0) == 30002
    assert stats.received == 2
    assert stats.lost == 0  # not 29 000 losses


def test_jump_just_below_max_dropout_is_loss_not_a_restart() -> None:
    stats = ReceiveStats(0)
    stats.update(0, 0)
    assert stats.update(MAX_DROPOUT - 1, 0) == MAX_DROPOUT - 1
    assert stats.lost == MAX_DROPOUT - 2
    assert stats.restarts == 0


def test_jump_of_max_dropout_is_unconfirmed() -> None:
    stats = ReceiveStats(0)
    stats.update(0, 0)
    assert stats.update(MAX_DROPOUT, 0) == UNCONFIRMED_JUMP


def test_jump_backwards_beyond_misorder_is_unconfirmed() -> None:
    stats = ReceiveStats(5000)
    feed(stats, range(5000, 5010))
    assert stats.update(4000, 0) == UNCONFIRMED_JUMP
    assert stats.update(4001, 0) == 4001
    assert stats.restarts == 1


def test_jitter_is_zero_for_constant_transit() -> None:
    stats = ReceiveStats(0)
    for k in range(1000):
        stats.update(k, 1234)
    assert stats.jitter == 0.0


def test_jitter_follows_rfc3550_a8_for_alternating_transit() -> None:
    stats = ReceiveStats(0)
    spread = 160  # transit alternates between 0 and 160 timestamp units
    for k in range(400):
        stats.update(k, spread * (k % 2))
        differences = k  # one |D| of `spread` per packet after the first
        expected = spread * (1 - (15 / 16) ** differences)
        assert stats.jitter == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert stats.jitter == pytest.approx(spread, rel=1e-6)


def test_jitter_of_one_step_change() -> None:
    stats = ReceiveStats(0)
    stats.update(0, 100)
    stats.update(1, 260)  # |D| = 160: J = 160/16
    assert stats.jitter == pytest.approx(10.0)
    stats.update(2, 260)  # |D| = 0: J = 10 - 10/16
    assert stats.jitter == pytest.approx(9.375)


def test_duplicates_do_not_change_jitter() -> None:
    stats = ReceiveStats(0)
    stats.update(0, 0)
    stats.update(1, 0)
    assert stats.update(1, 5000) == DUPLICATE
    assert stats.jitter == 0.0
