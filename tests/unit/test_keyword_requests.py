"""What subscribers ask for: keywords normalised; a keyword event reaches only the
subscribers that asked for its word, every other event reaches all."""

from __future__ import annotations

from sentiric_media.control.analysis import normalise
from sentiric_media.control.subscriptions import EventStreams
from sentiric_media.events.bus import MediaEvent


def event(kind: str, **data: object) -> MediaEvent:
    return MediaEvent(kind, "call", 4000, "", 0, dict(data))


def test_keywords_are_normalised_in_order_without_repeats():
    asked = ["  Operator ", "speak  to a\tPerson", "", "operator", "HELP"]
    assert normalise(asked) == ("operator", "speak to a person", "help")


async def test_a_keyword_reaches_only_who_asked_for_it():
    streams = EventStreams()
    both = streams.open(4000, ("operator", "help"))
    help_only = streams.open(4000, ("help",))
    nothing = streams.open(4000, ())
    other_port = streams.open(4002, ("operator",))
    streams.deliver(event("keyword", keyword="operator", confidence=0.9))
    streams.deliver(event("speech_started", probability=0.8))
    got = {}
    for name, subscription in (("both", both), ("help", help_only), ("nothing", nothing)):
        streams.end_port(4000)
        got[name] = [e.kind async for e in _drain(subscription)]
    assert got == {
        "both": ["keyword", "speech_started"],
        "help": ["speech_started"],
        "nothing": ["speech_started"],
    }
    assert not other_port._queue  # another session: nothing


async def _drain(subscription):
    while (item := await subscription.next_event()) is not None:
        yield item
