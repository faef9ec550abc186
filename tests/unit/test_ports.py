"""The RTP port pool (control/ports.py) driven by a fake clock."""

from __future__ import annotations

import pytest

from sentiric_media.control.ports import PortPool
from sentiric_media.errors import ResourceExhausted

EPSILON = 1e-6


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_pool(clock: FakeClock, count: int = 4, quarantine: float = 5.0) -> PortPool:
    return PortPool(range(10000, 10000 + 2 * count, 2), quarantine, clock=clock)


def test_ports_are_handed_out_in_order(clock: FakeClock) -> None:
    pool = make_pool(clock)
    assert [pool.acquire() for _ in range(4)] == [10000, 10002, 10004, 10006]
    assert pool.size == 4


def test_released_ports_come_back_least_recently_used_first(clock: FakeClock) -> None:
    pool = make_pool(clock, count=4, quarantine=1.0)
    ports = [pool.acquire() for _ in range(4)]
    pool.release(ports[2])
    clock.advance(0.1)
    pool.release(ports[0])
    clock.advance(0.1)
    pool.release(ports[3])
    clock.advance(10)
    assert [pool.acquire() for _ in range(3)] == [ports[2], ports[0], ports[3]]


def test_returned_port_goes_behind_ports_that_were_never_used(clock: FakeClock) -> None:
    pool = make_pool(clock, count=3, quarantine=0.0)
    first = pool.acquire()
    pool.release(first)
    assert pool.acquire() == 10002
    assert pool.acquire() == 10004
    assert pool.acquire() == first


@pytest.mark.parametrize("quarantine", [0.5, 5.0, 30.0])
def test_quarantine_lasts_exactly_the_configured_time(clock: FakeClock, quarantine: float) -> None:
    pool = make_pool(clock, count=1, quarantine=quarantine)
    port = pool.acquire()
    released_at = clock.now
    pool.release(port)
    clock.now = released_at + quarantine - EPSILON
    assert pool.free_count == 0
    assert pool.quarantined_count == 1
    with pytest.raises(ResourceExhausted):
        pool.acquire()
    clock.now = released_at + quarantine
    assert pool.free_count == 1
    assert pool.quarantined_count == 0
    assert pool.acquire() == port


def test_each_port_has_its_own_deadline(clock: FakeClock) -> None:
    pool = make_pool(clock, count=2, quarantine=5.0)
    a, b = pool.acquire(), pool.acquire()
    pool.release(a)
    clock.advance(3.0)
    pool.release(b)
    clock.advance(2.0)  # a's 5 s are over, b has 3 s left
    assert pool.acquire() == a
    with pytest.raises(ResourceExhausted):
        pool.acquire()
    clock.advance(3.0 - EPSILON)
    assert pool.free_count == 0
    clock.advance(EPSILON)
    assert pool.acquire() == b


def test_zero_quarantine_frees_at_once(clock: FakeClock) -> None:
    pool = make_pool(clock, count=1, quarantine=0.0)
    port = pool.acquire()
    pool.release(port)
    assert pool.quarantined_count == 0
    assert pool.acquire() == port


def test_exhausted_pool_names_the_counts(clock: FakeClock) -> None:
    pool = make_pool(clock, count=3, quarantine=5.0)
    held = [pool.acquire() for _ in range(3)]
    pool.release(held[0])
    with pytest.raises(ResourceExhausted) as info:
        pool.acquire()
    message = str(info.value)
    assert "2 in use" in message
    assert "1 in quarantine" in message
    assert "pool of 3" in message
    assert info.value.status == "RESOURCE_EXHAUSTED"


def test_empty_pool_is_exhausted(clock: FakeClock) -> None:
    pool = PortPool([], 5.0, clock=clock)
    with pytest.raises(ResourceExhausted, match="pool of 0"):
        pool.acquire()


def test_counts_follow_the_life_of_a_port(clock: FakeClock) -> None:
    pool = make_pool(clock, count=4, quarantine=2.0)
    assert (pool.free_count, pool.quarantined_count, pool.in_use_count) == (4, 0, 0)
    a = pool.acquire()
    b = pool.acquire()
    assert (pool.free_count, pool.quarantined_count, pool.in_use_count) == (2, 0, 2)
    pool.release(a)
    assert (pool.free_count, pool.quarantined_count, pool.in_use_count) == (2, 1, 1)
    clock.advance(2.0)
    assert (pool.free_count, pool.quarantined_count, pool.in_use_count) == (3, 0, 1)
    pool.release(b)
    clock.advance(2.0)
    assert (pool.free_count, pool.quarantined_count, pool.in_use_count) == (4, 0, 0)


def test_bind_failure_release_quarantines_the_port(clock: FakeClock) -> None:
    # The manager acquires a port, fails to bind it, releases it and tries the next one.
    pool = make_pool(clock, count=2, quarantine=5.0)
    broken = pool.acquire()
    pool.release(broken)
    assert pool.in_use_count == 0
    assert pool.quarantined_count == 1
    assert pool.acquire() == 10002
    with pytest.raises(ResourceExhausted):
        pool.acquire()
    clock.advance(5.0)
    assert pool.acquire() == broken


def test_release_of_a_port_never_handed_out_is_ignored(clock: FakeClock) -> None:
    pool = make_pool(clock, count=1, quarantine=1.0)
    pool.release(20000)
    assert pool.quarantined_count == 0
    assert pool.in_use_count == 0
    assert pool.acquire() == 10000
    clock.advance(1.0)
    with pytest.raises(ResourceExhausted):
        pool.acquire()


def test_release_of_a_free_port_changes_nothing(clock: FakeClock) -> None:
    pool = make_pool(clock, count=2, quarantine=1.0)
    pool.release(10000)  # never acquired: still in the free queue
    assert pool.free_count == 2
    assert pool.acquire() == 10000
    assert pool.acquire() == 10002
    clock.advance(1.0)
    with pytest.raises(ResourceExhausted):
        pool.acquire()


def test_double_release_does_not_duplicate_the_port(clock: FakeClock) -> None:
    pool = make_pool(clock, count=2, quarantine=1.0)
    port = pool.acquire()
    pool.release(port)
    pool.release(port)
    clock.advance(1.0)
    assert pool.free_count == 2
    handed_out = [pool.acquire(), pool.acquire()]
    assert sorted(handed_out) == [10000, 10002]


def test_released_port_is_not_reused_while_others_are_free(clock: FakeClock) -> None:
    pool = make_pool(clock, count=50, quarantine=0.0)
    seen: list[int] = []
    for _ in range(50):
        port = pool.acquire()
        seen.append(port)
        pool.release(port)
    # With a zero quarantine, FIFO order still cycles through the whole pool.
    assert len(set(seen)) == 50
