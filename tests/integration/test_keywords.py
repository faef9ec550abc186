"""Keyword spotting over real UDP and gRPC, in the real worker process: a subscriber's
word spoken by the caller is a `keyword` event at its place; another subscriber's
words are not sent to it; words the dictionary lacks are refused, naming them."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import grpc
import numpy as np
import soxr

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import (
    allocate,
    drain,
    rtp_packets,
    send_paced,
    stream_error,
    wait_until,
)
from tests.support import require

RATE = 8000


def _say(text: str, folder: Path, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """espeak-ng speech at 8 kHz, trimmed to where it is audible."""
    path = folder / "say.wav"
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    with wave.open(str(path), "rb") as handle:
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    samples = soxr.resample(pcm.astype(np.float32), rate, RATE)
    loud = np.flatnonzero(np.abs(samples) > 300)
    samples = samples[loud[0] : loud[-1] + 1]
    return np.rint(samples * (0.5 * 32767 / np.abs(samples).max())).astype(np.int16)


async def _events(call, within: float) -> list[pb.MediaEvent]:
    """Every event of a subscription until the port is released (drained)."""
    return await drain(call, within)


async def test_a_spoken_keyword_is_reported_to_who_asked(service, stub, peer, tmp_path):
    require("espeak-ng")
    sentence = _say("Please connect me to an operator.", tmp_path)
    port = await allocate(stub, "keywords-spoken")
    asked = stub.StreamEvents(
        pb.StreamEventsRequest(server_rtp_port=port, keywords=["Operator", "cancel"])
    )
    other = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port, keywords=["cancel"]))
    assert await wait_until(lambda: len(service.manager.events._by_port.get(port, ())) == 2, 3.0)
    session = service.manager.by_port[port]
    assert session.listening.speech is not None
    assert session.listening.speech.wanted.keywords == ("cancel", "operator")
    silence = np.zeros(RATE // 2, np.int16)
    audio = np.concatenate([silence, sentence, silence, silence])
    sent_at = (time.monotonic() - session.created_at) * 1000
    await send_paced(peer, port, rtp_packets(audio))
    worker = service.manager.analysis.worker
    assert await wait_until(lambda: worker.counters.hits >= 1, 5.0), worker.counters
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    heard = [e for e in await _events(asked, 5.0) if e.WhichOneof("event") == "keyword"]
    assert [e.keyword.keyword for e in heard] == ["operator"]
    assert 0.0 < heard[0].keyword.confidence <= 1.0
    # "operator" is the last word: it begins in the sentence's second half.
    sentence_ms = len(sentence) * 1000 // RATE
    begins = heard[0].media_time_ms - sent_at - 500
    assert sentence_ms * 0.4 <= begins <= sentence_ms + 100, (begins, sentence_ms)
    kinds = [e.WhichOneof("event") for e in await _events(other, 5.0)]
    assert "speech_started" in kinds
    assert "keyword" not in kinds


async def test_words_outside_the_dictionary_are_refused_by_name(service, stub):
    port = await allocate(stub, "keywords-unknown")
    call = stub.StreamEvents(
        pb.StreamEventsRequest(server_rtp_port=port, keywords=["help", "xyzzyq", "frobnicatorz"])
    )
    message = await stream_error(call, grpc.StatusCode.INVALID_ARGUMENT)
    assert "'xyzzyq'" in message, message
    assert "'frobnicatorz'" in message, message
    assert "help" not in message.split("not in")[0], message
    assert not service.manager.events._by_port.get(port)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))


async def test_keywords_on_an_unknown_port_are_not_found(stub):
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=1, keywords=["help"]))
    assert "1" in await stream_error(call, grpc.StatusCode.NOT_FOUND)


async def test_without_keywords_no_spotting_runs(service, stub, peer):
    port = await allocate(stub, "keywords-none")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    session = service.manager.by_port[port]
    assert session.vad is not None
    speech = session.listening.speech
    assert speech is None or speech.wanted.keywords == ()
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await drain(call)


async def test_the_spotter_follows_the_subscribers(service, stub):
    port = await allocate(stub, "keywords-follow")
    first = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port, keywords=["help"]))
    session_keywords = lambda: (  # noqa: E731
        tap.wanted.keywords if (tap := service.manager.by_port[port].listening.speech) else None
    )
    assert await wait_until(lambda: session_keywords() == ("help",), 3.0)
    second = stub.StreamEvents(
        pb.StreamEventsRequest(server_rtp_port=port, keywords=["agent", "help"])
    )
    assert await wait_until(lambda: session_keywords() == ("agent", "help"), 3.0)
    second.cancel()
    assert await wait_until(lambda: session_keywords() == ("help",), 3.0)
    first.cancel()
    assert await wait_until(lambda: session_keywords() in (None, ()), 3.0)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
