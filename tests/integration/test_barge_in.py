"""Barge-in over real UDP and gRPC: the caller talking over an interruptible prompt stops
it (a `barge_in` event, then `playback_finished` interrupted) and the prompts queued
behind it that are interruptible; a non-interruptible prompt plays on."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.media.codecs.g711 import ULAW
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import (
    allocate,
    drain,
    read_messages,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
    wav_uri,
)

RATE = 8000
PROMPT_S = 4


def _prompt(seconds: float = PROMPT_S) -> str:
    return wav_uri((speech()[: int(RATE * seconds)] // 2).astype(np.int16))


def _caller_speech() -> list[bytes]:
    samples = speech()[RATE * 3 : RATE * 5]
    loud = np.flatnonzero(np.abs(samples) > 500)
    return rtp_packets(samples[loud[0] :], ssrc=0xBA96E)


async def _play(stub, port: int, peer, uri: str, interruptible: bool | None) -> None:
    request = pb.PlayAudioRequest(
        audio_uri=uri, server_rtp_port=port, rtp_target_addr=peer.address_text
    )
    if interruptible is not None:
        request.interruptible = interruptible
    assert (await stub.PlayAudio(request)).success


async def test_speech_over_an_interruptible_prompt_stops_it(service, stub, peer):
    port = await allocate(stub, "barge-in")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    uri = _prompt()
    await _play(stub, port, peer, uri, interruptible=True)
    await asyncio.sleep(0.5)  # the prompt plays
    talking = asyncio.create_task(send_paced(peer, port, _caller_speech()))
    began = time.monotonic()
    events = await read_messages(call, 4, within=4)
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "playback_started"
    assert "barge_in" in kinds
    barge = events[kinds.index("barge_in")]
    finished = events[kinds.index("playback_finished")]
    assert kinds.index("barge_in") < kinds.index("playback_finished")
    assert barge.barge_in.audio_uri == uri[:60] + "…"
    assert 400 <= barge.barge_in.played_ms <= 1500
    assert 140 <= barge.barge_in.reaction_ms <= 400  # the minimum speech, give or take a phase
    assert finished.playback_finished.interrupted
    # The prompt stopped: nothing more comes from the service.
    await peer.wait_quiet(0.2, 3)
    stopped = peer.raw[-1][0]
    print(f"barge-in: prompt stopped {1000 * (stopped - began):.0f} ms after the caller began")
    assert stopped - began < 1.0
    assert len(peer.packets) < PROMPT_S * 50 * 0.6
    talking.cancel()
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await drain(call)


async def test_a_prompt_without_interruptible_plays_on_by_default(service, stub, peer):
    port = await allocate(stub, "no-barge-in")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    await _play(stub, port, peer, _prompt(2), interruptible=None)  # the default: false
    await asyncio.sleep(0.3)
    await send_paced(peer, port, _caller_speech()[:60])
    await asyncio.sleep(1.2)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    events = await drain(call)
    kinds = [e.WhichOneof("event") for e in events]
    assert "barge_in" not in kinds
    finished = [e for e in events if e.WhichOneof("event") == "playback_finished"]
    assert [f.playback_finished.interrupted for f in finished] == [False]
    assert "speech_started" in kinds  # the caller was heard, and the prompt played on


async def test_barge_in_flushes_the_interruptible_queue_and_keeps_the_rest(service, stub, peer):
    port = await allocate(stub, "barge-in-queue")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    first, second, kept = _prompt(), _prompt(1), _prompt(0.6)
    await _play(stub, port, peer, first, interruptible=True)
    await _play(stub, port, peer, second, interruptible=True)
    await _play(stub, port, peer, kept, interruptible=False)
    await asyncio.sleep(0.4)
    await send_paced(peer, port, _caller_speech()[:25])  # 500 ms of speech
    await asyncio.sleep(1.2)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    events = [e for e in await drain(call) if e.WhichOneof("event") != "speech_ended"]
    played = [
        (e.WhichOneof("event"), getattr(e, e.WhichOneof("event")).interrupted)
        for e in events
        if e.WhichOneof("event") == "playback_finished"
    ]
    assert played == [("playback_finished", True)] * 2 + [("playback_finished", False)]
    assert sum(e.WhichOneof("event") == "barge_in" for e in events) == 1


class _EchoingPhone:
    """Returns every prompt packet it receives `delay` later, `gain_db` down (a phone's echo);
    `talk` adds the caller's own voice on top of the echo from then on."""

    def __init__(self, peer, port: int, delay: float, gain_db: float) -> None:
        self.peer, self.port, self.delay = peer, port, delay
        self.gain = 10 ** (gain_db / 20)
        self.voice: list[np.ndarray] = []
        self.sequence, self.timestamp = 7000, 90000
        self._seen = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def talk(self, samples: np.ndarray) -> None:
        self.voice = [samples[k : k + 160] for k in range(0, len(samples) - 159, 160)]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.005)
            for packet in self.peer.packets[self._seen :]:
                echo = ULAW.decode(packet.payload).astype(np.float64) * self.gain
                loop.call_later(self.delay, self._send, echo)
            self._seen = len(self.peer.packets)

    def _send(self, echo: np.ndarray) -> None:
        if self.voice:
            echo = echo + self.voice.pop(0)
        pcm = np.clip(echo, -32768, 32767).astype(np.int16)
        self.peer.send(
            build_rtp(0, self.sequence, self.timestamp, 0xEC40, ULAW.encode(pcm), False), self.port
        )
        self.sequence, self.timestamp = self.sequence + 1, self.timestamp + 160

    def stop(self) -> None:
        self._task.cancel()


async def test_our_prompt_echoed_at_minus_10_db_and_150_ms_does_not_barge_in(service, stub, peer):
    port = await allocate(stub, "barge-in-echo")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    phone = _EchoingPhone(peer, port, delay=0.15, gain_db=-10)
    await _play(stub, port, peer, _prompt(3), interruptible=True)
    await asyncio.sleep(3.6)
    phone.stop()
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    events = await drain(call)
    kinds = [e.WhichOneof("event") for e in events]
    assert "speech_started" in kinds  # the VAD heard the echo as speech ...
    assert "barge_in" not in kinds  # ... and barge-in knew it for our own voice
    finished = [e.playback_finished for e in events if e.WhichOneof("event") == "playback_finished"]
    assert [f.interrupted for f in finished] == [False]


async def test_the_caller_talking_over_the_echo_still_barges_in(service, stub, peer):
    port = await allocate(stub, "barge-in-echo-talk")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    phone = _EchoingPhone(peer, port, delay=0.15, gain_db=-10)
    await _play(stub, port, peer, _prompt(), interruptible=True)
    await asyncio.sleep(1.2)  # the echo path is known by now
    voice = speech()[RATE * 3 : RATE * 5]
    phone.talk(voice[np.flatnonzero(np.abs(voice) > 500)[0] :])
    events = await read_messages(call, 3, within=4)
    phone.stop()
    kinds = [e.WhichOneof("event") for e in events]
    assert "barge_in" in kinds, kinds
    # Reaction from the caller's own voice, not from the echo the VAD heard first.
    assert 140 <= events[kinds.index("barge_in")].barge_in.reaction_ms <= 600
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await drain(call)
