"""Unit: the event outbox (events/outbox.py) — order, bound, removal, damaged files."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from sentiric_media.events.outbox import Outbox


def test_messages_come_back_in_the_order_they_were_put(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", max_messages=1000)
    for index in range(250):
        assert outbox.put("key.a" if index % 2 else "key.b", {"n": index})
    assert len(outbox) == 250
    pending = outbox.pending(limit=1000)
    assert [m.body["n"] for m in pending] == list(range(250))
    assert [m.routing_key for m in pending[:2]] == ["key.b", "key.a"]
    assert [m.body["n"] for m in outbox.pending(limit=10)] == list(range(10))


def test_each_message_is_one_complete_json_file(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    outbox = Outbox(folder, max_messages=10)
    outbox.put("call.recording.available", {"callId": "c-1", "ü": "ß"})
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 1
    assert files[0].endswith(".json")
    assert not files[0].startswith(".")  # no temporary left behind
    [message] = outbox.pending()
    assert message.name == files[0]
    assert message.routing_key == "call.recording.available"
    assert message.body == {"callId": "c-1", "ü": "ß"}


def test_the_outbox_is_bounded_and_refuses_beyond_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", max_messages=3)
    assert all(outbox.put("k", {"n": n}) for n in range(3))
    assert outbox.put("k", {"n": 3}) is False
    assert len(outbox) == 3
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 3
    outbox.remove(outbox.pending()[0])
    assert outbox.put("k", {"n": 4}) is True
    assert [m.body["n"] for m in outbox.pending()] == [1, 2, 4]


def test_remove_deletes_the_file_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox", max_messages=10)
    outbox.put("k", {"n": 1})
    outbox.put("k", {"n": 2})
    first = outbox.pending()[0]
    outbox.remove(first)
    outbox.remove(first)  # a second remove (e.g. a re-delivery) must not miscount
    assert len(outbox) == 1
    assert not (tmp_path / "outbox" / first.name).exists()
    assert [m.body["n"] for m in outbox.pending()] == [2]


def test_a_restart_finds_the_messages_in_order(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    before = Outbox(folder, max_messages=10)
    for n in range(5):
        before.put("k", {"n": n})
    (folder / ".half-written.json.tmp").write_text("{")  # a put interrupted by a crash
    after = Outbox(folder, max_messages=10)
    assert len(after) == 5
    assert [m.body["n"] for m in after.pending()] == [0, 1, 2, 3, 4]
    after.put("k", {"n": 5})
    assert [m.body["n"] for m in after.pending()][-1] == 5


def test_a_restart_with_a_full_outbox_still_refuses(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    before = Outbox(folder, max_messages=2)
    before.put("k", {})
    before.put("k", {})
    assert Outbox(folder, max_messages=2).put("k", {}) is False


@pytest.mark.parametrize(
    "content", ["{not json", '{"body": {}}', '{"routing_key": "k"}', ""], ids=repr
)
def test_an_unreadable_file_is_moved_aside_and_the_rest_is_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    folder = tmp_path / "outbox"
    outbox = Outbox(folder, max_messages=10)
    outbox.put("k", {"n": 1})
    bad = folder / "00000000000000000000-1-000000.json"  # sorts first
    bad.write_text(content)
    outbox = Outbox(folder, max_messages=10)
    assert len(outbox) == 2
    with caplog.at_level(logging.ERROR):
        pending = outbox.pending()
    assert [m.body for m in pending] == [{"n": 1}]
    assert not bad.exists()
    assert bad.with_suffix(".bad").exists()
    assert bad.name in caplog.text
    assert len(outbox) == 1
    assert outbox.pending() == pending  # not reported twice


def test_names_sort_in_put_order_even_within_one_clock_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sentiric_media.events.outbox.time.time_ns", lambda: 1_700_000_000)
    outbox = Outbox(tmp_path / "outbox", max_messages=100)
    for n in range(20):
        outbox.put("k", {"n": n})
    assert [m.body["n"] for m in outbox.pending()] == list(range(20))
    assert all(f"-{os.getpid()}-" in m.name for m in outbox.pending())
