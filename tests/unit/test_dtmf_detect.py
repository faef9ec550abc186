"""In-band DTMF detection (analysis/dtmf_detect.py) against the ITU-T Q.24 limits.

- keys and timing: all sixteen keys at 8 and 16 kHz, the 40 ms operate and
  23 ms reject durations at every alignment to the 10 ms blocks, pauses and
  interruptions;
- the Q.24 acceptance limits: level, twist, frequency offset, noise;
- the batched path: a `DtmfBank` of many streams, odd chunk sizes, jumps in
  the positions and `release`, against `detect()` on each stream alone.

Talk-off (speech and music) is in test_dtmf_talkoff.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from sentiric_media.analysis.dtmf_detect import (
    BLOCK_MS,
    DtmfBank,
    DtmfDetector,
    InbandPress,
    detect,
)
from sentiric_media.audio.dtmf import KEYS
from sentiric_media.media.codecs.g711 import ULAW
from tests.unit.dtmf_signals import (
    RATES,
    TOLERANCE_MS,
    Segment,
    build,
    found_keys,
    key_sequence,
    key_signal,
    samples,
    to_pcm,
    white_noise,
)

# --- 1. All keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("lead", [0, 37])
@pytest.mark.parametrize("rate", RATES)
def test_all_keys_in_order_with_onset_and_duration(rate: int, lead: int) -> None:
    signal, onsets = key_sequence(rate, KEYS, 100, np.random.default_rng(1), lead=lead)
    presses = detect(rate, to_pcm(signal))
    assert "".join(p.key for p in presses) == KEYS
    for press, onset in zip(presses, onsets, strict=True):
        assert abs(press.position - onset) <= samples(rate, TOLERANCE_MS), press
        assert abs(press.duration_ms - 100) <= TOLERANCE_MS, press


# --- 2. Timing ------------------------------------------------------------------------------


def at_offset(rate: int, offset: int, segments: Sequence[Segment]) -> list[Segment]:
    """`segments` starting `offset` samples after a block boundary (50 ms in), then 100 ms."""
    return [(None, samples(rate, 50) + offset), *segments, (None, samples(rate, 100))]


def alignments(rate: int) -> range:
    """Every offset of an onset from the 10 ms block boundaries."""
    return range(samples(rate, BLOCK_MS))


@pytest.mark.parametrize("rate", RATES)
def test_40_ms_tone_is_detected_at_every_alignment(rate: int) -> None:
    rng = np.random.default_rng(2)
    misses = []
    for offset in alignments(rate):
        key = KEYS[offset % len(KEYS)]
        signal, _ = build(rate, at_offset(rate, offset, [(key, samples(rate, 40))]), rng)
        if (got := found_keys(rate, signal)) != key:
            misses.append((offset, key, got))
    assert misses == []


@pytest.mark.parametrize("tone_ms", [20, 23])
@pytest.mark.parametrize("rate", RATES)
def test_short_tone_is_never_detected(rate: int, tone_ms: int) -> None:
    rng = np.random.default_rng(3)
    hits = []
    for offset in alignments(rate):
        key = KEYS[offset % len(KEYS)]
        signal, _ = build(rate, at_offset(rate, offset, [(key, samples(rate, tone_ms))]), rng)
        if got := found_keys(rate, signal):
            hits.append((offset, key, got))
    assert hits == []


@pytest.mark.parametrize("rate", RATES)
def test_long_tone_is_one_press(rate: int) -> None:
    lead = samples(rate, 41.7)  # off the block boundaries
    segments = [(None, lead), ("5", samples(rate, 3000)), (None, samples(rate, 100))]
    signal, _ = build(rate, segments, np.random.default_rng(4))
    presses = detect(rate, to_pcm(signal))
    assert [p.key for p in presses] == ["5"]
    assert abs(presses[0].position - lead) <= samples(rate, TOLERANCE_MS)
    assert abs(presses[0].duration_ms - 3000) <= TOLERANCE_MS


# --- 3. Pauses and interruptions ------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_40_ms_pause_separates_two_presses_of_one_key(rate: int) -> None:
    rng = np.random.default_rng(5)
    misses = []
    for offset in alignments(rate):
        key = KEYS[offset % len(KEYS)]
        tone, pause = (key, samples(rate, 40)), (None, samples(rate, 40))
        signal, _ = build(rate, at_offset(rate, offset, [tone, pause, tone]), rng)
        if (got := found_keys(rate, signal)) != 2 * key:
            misses.append((offset, key, got))
    assert misses == []


@pytest.mark.parametrize("rate", RATES)
def test_10_ms_interruption_is_bridged(rate: int) -> None:
    rng = np.random.default_rng(6)
    wrong = []
    for offset in alignments(rate):
        key = KEYS[offset % len(KEYS)]
        tone = key_signal(key, rate, samples(rate, 200), rng)
        cut = samples(rate, 80) + offset
        tone[cut : cut + samples(rate, 10)] = 0.0  # the tones go on, in phase, after the break
        signal = np.concatenate([np.zeros(samples(rate, 50)), tone, np.zeros(samples(rate, 100))])
        presses = detect(rate, to_pcm(signal))
        if [p.key for p in presses] != [key] or abs(presses[0].duration_ms - 200) > TOLERANCE_MS:
            wrong.append((offset, key, presses))
    assert wrong == []


# --- 4-6. Level, twist, frequency -----------------------------------------------------------


@pytest.mark.parametrize(("dbm0", "expected"), [(-25, KEYS), (-3, KEYS), (-35, "")])
@pytest.mark.parametrize("rate", RATES)
def test_level(rate: int, dbm0: float, expected: str) -> None:
    rng = np.random.default_rng(7)
    signal, _ = key_sequence(rate, KEYS, 100, rng, low_dbm0=dbm0, high_dbm0=dbm0)
    assert found_keys(rate, signal) == expected


@pytest.mark.parametrize(
    ("louder", "db", "expected"),
    [("high", 7, KEYS), ("high", 10, ""), ("low", 3, KEYS), ("low", 6, "")],
)
@pytest.mark.parametrize("rate", RATES)
def test_twist(rate: int, louder: str, db: float, expected: str) -> None:
    """One group `db` above the other, the louder tone at -10 dBm0."""
    quiet = -10.0 - db
    levels = {"low_dbm0": quiet} if louder == "high" else {"high_dbm0": quiet}
    signal, _ = key_sequence(rate, KEYS, 100, np.random.default_rng(8), **levels)
    assert found_keys(rate, signal) == expected


@pytest.mark.parametrize("signs", [(1, 1), (-1, -1), (1, -1), (-1, 1)])
@pytest.mark.parametrize(("offset", "expected"), [(0.015, KEYS), (0.035, "")])
@pytest.mark.parametrize("rate", RATES)
def test_frequency_offset(rate: int, offset: float, expected: str, signs: tuple[int, int]) -> None:
    shift = (signs[0] * offset, signs[1] * offset)
    signal, _ = key_sequence(rate, KEYS, 100, np.random.default_rng(9), shift=shift)
    assert found_keys(rate, signal) == expected


# --- 7. Noise -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_keys_in_white_noise_at_20_db_snr(rate: int) -> None:
    rng = np.random.default_rng(10)
    noise_dbm0 = -10.0 + 10 * np.log10(2) - 20  # the two tones carry twice a -10 dBm0 sine's power
    for _ in range(3):
        signal, _ = key_sequence(rate, KEYS, 100, rng)
        assert found_keys(rate, signal + white_noise(rng, len(signal), noise_dbm0)) == KEYS


@pytest.mark.parametrize("dbm0", [-50, -30, -20, -10, -3])
@pytest.mark.parametrize("rate", RATES)
def test_noise_alone_is_no_key(rate: int, dbm0: float) -> None:
    rng = np.random.default_rng(11)
    assert detect(rate, to_pcm(white_noise(rng, samples(rate, 10_000), dbm0))) == []


# --- 9. Batching ----------------------------------------------------------------------------


def packet_of(rate: int) -> int:
    return rate // 50


def shifted(presses: list[InbandPress], base: int) -> list[InbandPress]:
    return [press._replace(position=press.position + base) for press in presses]


def test_bank_of_50_streams_matches_detect_alone() -> None:
    """50 streams, staggered, at both rates, each from its own first position, 20 ms a tick."""
    rng = np.random.default_rng(13)
    streams = []  # (rate, first position, pcm, first tick, keys)
    for index in range(50):
        rate = RATES[index % 2]
        keys = KEYS[index % 16] + KEYS[(7 * index + 3) % 16]
        lead = samples(rate, 20 + index % 9 * 10) + index * 13 % samples(rate, BLOCK_MS)
        segments = [
            (None, lead),
            (keys[0], samples(rate, 60 + index % 5 * 20)),
            (None, samples(rate, 50 + index % 3 * 20)),
            (keys[1], samples(rate, 100)),
            (None, samples(rate, 80)),
        ]
        signal, _ = build(rate, segments, rng)
        pcm = to_pcm(np.concatenate([signal, np.zeros(-len(signal) % packet_of(rate))]))
        streams.append((rate, int(rng.integers(0, 2**31)), pcm, index % 11, keys))
    bank = DtmfBank()
    found: list[list[InbandPress]] = [[] for _ in streams]
    detectors: dict[int, DtmfDetector] = {}
    last_tick = max(first + len(pcm) // packet_of(rate) for rate, _, pcm, first, _ in streams)
    for tick in range(last_tick):
        ending = []
        for index, (rate, base, pcm, first, _) in enumerate(streams):
            packet = packet_of(rate)
            offset = (tick - first) * packet
            if not 0 <= offset < len(pcm):
                continue
            if index not in detectors:
                detectors[index] = bank.detector(rate, found[index].append)
            bank.add(detectors[index], base + offset, pcm[offset : offset + packet])
            if offset + packet == len(pcm):
                ending.append(index)
        bank.run()
        for index in ending:
            bank.release(detectors[index])
    for (rate, base, pcm, _, keys), presses in zip(streams, found, strict=True):
        assert presses == shifted(detect(rate, pcm), base)
        assert "".join(p.key for p in presses) == keys


def several_keys(rate: int, seed: int) -> np.ndarray:
    """All sixteen keys, 50 ms each, off the block boundaries, in whole 20 ms packets."""
    signal, _ = key_sequence(rate, KEYS, 50, np.random.default_rng(seed), lead=29)
    return to_pcm(np.concatenate([signal, np.zeros(-len(signal) % packet_of(rate))]))


@pytest.mark.parametrize("chunk", [7, 113, 240, 1001])
@pytest.mark.parametrize("rate", RATES)
def test_odd_chunks_give_the_same_presses(rate: int, chunk: int) -> None:
    pcm = several_keys(rate, 14)
    presses = detect(rate, pcm)
    assert "".join(p.key for p in presses) == KEYS
    assert detect(rate, pcm, chunk=chunk) == presses


def feed(
    bank: DtmfBank,
    detector: DtmfDetector,
    position: int,
    pcm: np.ndarray,
    *,
    per_run: int = 1,
    skip: Sequence[int] = (),
) -> None:
    """`pcm` in 20 ms packets from `position`, `per_run` packets per run, without `skip`."""
    packet = packet_of(detector.rate)
    for number, start in enumerate(range(0, len(pcm), packet)):
        if number not in skip:
            bank.add(detector, position + start, pcm[start : start + packet])
        if number % per_run == per_run - 1:
            bank.run()
    bank.run()


def one_stream(rate: int) -> tuple[DtmfBank, DtmfDetector, list[InbandPress]]:
    bank = DtmfBank()
    found: list[InbandPress] = []
    return bank, bank.detector(rate, found.append), found


@pytest.mark.parametrize("per_run", [2, 3, 5])
@pytest.mark.parametrize("rate", RATES)
def test_packets_added_before_one_run_give_the_same_presses(rate: int, per_run: int) -> None:
    pcm = several_keys(rate, 15)
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 1234, pcm, per_run=per_run)
    detector.flush()
    assert found == shifted(detect(rate, pcm), 1234)


@pytest.mark.parametrize("rate", RATES)
def test_jump_in_positions_ends_the_press_in_progress(rate: int) -> None:
    rng = np.random.default_rng(16)
    tone = to_pcm(key_signal("7", rate, samples(rate, 200), rng))
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 0, tone)
    assert found == []  # the key is still held
    later = len(tone) + rate  # a second lost, then the same key again
    bank.add(detector, later, tone[: packet_of(rate)])
    assert [(p.key, p.position) for p in found] == [("7", 0)]
    assert abs(found[0].duration_ms - 200) <= TOLERANCE_MS
    bank.run()
    feed(bank, detector, later + packet_of(rate), tone[packet_of(rate) :])
    feed(bank, detector, later + len(tone), np.zeros(samples(rate, 100), np.int16))
    assert [(p.key, p.position) for p in found] == [("7", 0), ("7", later)]
    assert abs(found[1].duration_ms - 200) <= TOLERANCE_MS


@pytest.mark.parametrize("rate", RATES)
def test_jump_with_packets_waiting_keeps_their_press(rate: int) -> None:
    """A tone added in packets not yet run, then a jump before the run: still a press."""
    rng = np.random.default_rng(17)
    tone = to_pcm(key_signal("9", rate, samples(rate, 60), rng))
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 0, tone, per_run=3)  # the three packets, then one run ...
    detector.flush()
    assert [(p.key, p.position) for p in found] == [("9", 0)]
    bank, detector, found = one_stream(rate)
    packet = packet_of(rate)
    for start in range(0, len(tone), packet):  # ... or the three packets and a jump first
        bank.add(detector, start, tone[start : start + packet])
    bank.add(detector, 10 * rate, np.zeros(packet, np.int16))
    bank.run()
    detector.flush()
    assert [(p.key, p.position) for p in found] == [("9", 0)]


@pytest.mark.parametrize("rate", RATES)
def test_lost_packet_inside_a_press_does_not_split_it(rate: int) -> None:
    rng = np.random.default_rng(18)
    signal, _ = build(rate, [("3", samples(rate, 200)), (None, samples(rate, 100))], rng)
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 0, to_pcm(signal), skip=[5])  # packet 5 (100-120 ms) lost
    assert [(p.key, p.position) for p in found] == [("3", 0)]
    assert abs(found[0].duration_ms - 180) <= TOLERANCE_MS  # the audio that arrived


@pytest.mark.parametrize("rate", RATES)
def test_small_placement_shift_between_presses_moves_the_positions(rate: int) -> None:
    """Packets placed 37 samples later from 60 ms on (before the tone): so is its press."""
    rng = np.random.default_rng(19)
    segments = [(None, samples(rate, 100)), ("4", samples(rate, 100)), (None, samples(rate, 100))]
    pcm = to_pcm(build(rate, segments, rng)[0])
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 0, pcm[: samples(rate, 60)])
    feed(bank, detector, samples(rate, 60) + 37, pcm[samples(rate, 60) :])
    assert [p.key for p in found] == ["4"]
    assert abs(found[0].position - (samples(rate, 100) + 37)) <= samples(rate, TOLERANCE_MS)


@pytest.mark.parametrize("rate", RATES)
def test_release_reports_the_press_in_progress_and_frees_its_slot(rate: int) -> None:
    rng = np.random.default_rng(20)
    bank, detector, found = one_stream(rate)
    feed(bank, detector, 0, to_pcm(key_signal("#", rate, samples(rate, 300), rng)))
    assert found == []
    bank.release(detector)
    assert [p.key for p in found] == ["#"]
    assert abs(found[0].duration_ms - 300) <= TOLERANCE_MS
    bank.run()  # the slot is free once the blocks waiting (none here) are through
    # The next stream, in the freed slot, starts clean: its own key, no trace of the last one.
    after: list[InbandPress] = []
    reused = bank.detector(rate, after.append)
    assert reused.slot == detector.slot
    signal, _ = build(rate, [("2", samples(rate, 100)), (None, samples(rate, 100))], rng)
    feed(bank, reused, 0, to_pcm(signal))
    assert [(p.key, p.position, p.duration_ms) for p in after] == [("2", 0, 100)]
    assert len(found) == 1


# --- 11. G.711 code bytes, decoded by the bank ----------------------------------------------


def test_g711_code_bytes_give_the_same_presses_as_decoded_audio() -> None:
    """`add_g711` (the receiver's path for G.711 calls) against `add` of the decoded audio."""
    rng = np.random.default_rng(11)
    signal, _ = key_sequence(8000, "147*2580", 100, rng, lead=37)
    code = ULAW.encode(to_pcm(signal))
    packet = 160
    by_bytes: list[InbandPress] = []
    by_pcm: list[InbandPress] = []
    bank = DtmfBank()
    raw, decoded = bank.detector(8000, by_bytes.append), bank.detector(8000, by_pcm.append)
    for start in range(0, len(code) - packet + 1, packet):
        payload = code[start : start + packet]
        # A short packet now and then takes the decoding path inside the bank.
        if start // packet % 7 == 3:
            bank.add_g711(raw, start, payload[:50], ULAW.decode_table)
            bank.add_g711(raw, start + 50, payload[50:], ULAW.decode_table)
        else:
            bank.add_g711(raw, start, payload, ULAW.decode_table)
        bank.add(decoded, start, ULAW.decode(payload))
        if start // packet % 3 == 0:  # two packets per run now and then
            bank.run()
    bank.run()
    bank.release(raw)
    bank.release(decoded)
    assert "".join(p.key for p in by_bytes) == "147*2580"
    assert by_bytes == by_pcm
