"""Keyword spotting end to end: FFmpeg is the caller and says a sentence (espeak-ng) over
PCMU and PCMA; the service (its own process, its own analysis worker) reports the spoken
keyword to the subscriber that asked, and not the unspoken one. (Over G.722 the same
sentence was not found: see docs/PERFORMANCE.md, keyword spotting.)"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.conftest import require_tool
from tests.e2e.phone import ffmpeg_rtp_sender, finish, lavfi_source, spawn

pytestmark = pytest.mark.e2e

SENTENCE = "I would like to cancel my subscription please."


@pytest.fixture(scope="module")
def sentence_wav(e2e_root: Path) -> Path:
    espeak = require_tool("espeak-ng", "espeak-ng speaks the caller's sentence", "espeak-ng")
    target = e2e_root / "keyword_sentence.wav"
    command = [espeak, "-v", "en-us", "-s", "150", "-w", str(target), SENTENCE]
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    return target


async def _events(stub, port: int, keywords: list[str], into: list[pb.MediaEvent]) -> None:
    request = pb.StreamEventsRequest(server_rtp_port=port, keywords=keywords)
    async for event in stub.StreamEvents(request):
        into.append(event)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
async def test_ffmpeg_says_a_keyword(ffmpeg: str, stub, sentence_wav: Path, codec: str) -> None:
    port = (
        await stub.AllocatePort(pb.AllocatePortRequest(call_id=f"e2e-keywords-{codec}"))
    ).rtp_port
    heard: list[pb.MediaEvent] = []
    loop = asyncio.get_running_loop()
    reader = loop.create_task(_events(stub, port, ["cancel", "operator"], heard))
    try:
        await asyncio.sleep(0.3)  # the subscription is in place before the caller talks
        source = f"{lavfi_source(sentence_wav)},apad=pad_dur=1.5"
        sender = spawn(ffmpeg_rtp_sender(ffmpeg, source, port, codec))
        status, errors = await finish(sender, 30)
        assert status == 0, f"FFmpeg sender: exit status {status}\n{errors}"
        await asyncio.sleep(1.0)  # the worker answers a frame or two after the speech
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
        await asyncio.wait_for(reader, 5)
    kinds = [e.WhichOneof("event") for e in heard]
    keywords = [e.keyword.keyword for e in heard if e.WhichOneof("event") == "keyword"]
    print(f"{codec}: events {kinds}, keywords {keywords}")
    assert "speech_started" in kinds
    assert keywords == ["cancel"]
