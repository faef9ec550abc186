"""DtmfMerge: one report per key press whichever way it came, the RFC 4733 one preferred."""

from __future__ import annotations

from sentiric_media.media.dtmf import DtmfPress, DtmfSource
from sentiric_media.media.dtmf_merge import HOLD_MS, DtmfMerge

RFC, INBAND = DtmfSource.RFC4733, DtmfSource.INBAND


def _merge(prefer: bool) -> tuple[DtmfMerge, list[DtmfPress]]:
    reported: list[DtmfPress] = []
    merge = DtmfMerge(reported.append)
    merge.prefer_rfc4733 = prefer
    return merge, reported


def test_a_press_that_came_both_ways_is_reported_once_as_rfc4733() -> None:
    merge, reported = _merge(prefer=True)
    tones = DtmfPress("5", 90, 10.02, INBAND)
    event = DtmfPress("5", 100, 10.0, RFC)
    merge.add(tones, now=10.14)  # the tones were heard first: held
    assert reported == []
    assert merge.holding
    merge.add(event, now=10.15)
    merge.check(now=11.0)
    assert reported == [event]
    assert merge.duplicates == 1
    assert not merge.holding


def test_rfc4733_first_then_the_tones_of_the_same_press() -> None:
    merge, reported = _merge(prefer=True)
    event = DtmfPress("5", 100, 10.0, RFC)
    merge.add(event, now=10.1)
    merge.add(DtmfPress("5", 90, 10.01, INBAND), now=10.15)
    merge.check(now=11.0)
    assert reported == [event]
    assert merge.duplicates == 1


def test_held_tones_without_an_rfc4733_report_are_reported_after_the_hold() -> None:
    merge, reported = _merge(prefer=True)
    tones = DtmfPress("9", 90, 10.0, INBAND)
    merge.add(tones, now=10.1)
    merge.check(now=10.1 + HOLD_MS / 1000 - 0.01)
    assert reported == []
    merge.check(now=10.1 + HOLD_MS / 1000)
    assert reported == [tones]


def test_without_telephone_events_tones_are_reported_at_once() -> None:
    merge, reported = _merge(prefer=False)
    tones = DtmfPress("1", 90, 10.0, INBAND)
    merge.add(tones, now=10.1)
    assert reported == [tones]
    assert not merge.holding


def test_the_same_key_twice_from_one_source_is_two_presses() -> None:
    merge, reported = _merge(prefer=False)
    first, second = DtmfPress("1", 100, 10.0, RFC), DtmfPress("1", 100, 10.15, RFC)
    merge.add(first, now=10.1)
    merge.add(second, now=10.25)
    assert reported == [first, second]
    assert merge.duplicates == 0


def test_different_keys_or_distant_presses_are_not_merged() -> None:
    merge, reported = _merge(prefer=True)
    merge.add(DtmfPress("1", 100, 10.0, RFC), now=10.1)
    merge.add(DtmfPress("2", 90, 10.0, INBAND), now=10.1)  # another key at the same time
    merge.add(DtmfPress("1", 90, 10.5, INBAND), now=10.6)  # the same key 400 ms later
    merge.check(now=12.0)
    assert [(p.digit, p.source) for p in reported] == [("1", RFC), ("2", INBAND), ("1", INBAND)]
    assert merge.duplicates == 0


def test_flush_reports_what_is_held() -> None:
    merge, reported = _merge(prefer=True)
    tones = DtmfPress("#", 90, 10.0, INBAND)
    merge.add(tones, now=10.1)
    merge.flush()
    assert reported == [tones]
    assert not merge.holding
