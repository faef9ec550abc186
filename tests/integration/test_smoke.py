"""Smoke: a prompt goes out paced, the caller's audio comes back live."""

from __future__ import annotations

import asyncio

import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.audio.decode import decode_container, to_rate
from sentiric_media.media.codecs import PCMU
from tests.conftest import PROMPT_WAV, SPEECH_WAV
from tests.support import UdpPeer, best_alignment, read_wav, send_rtp


async def test_prompt_and_live_audio(stub):
    peer = await UdpPeer.open()
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id="smoke-1"))).rtp_port
    reply = await stub.PlayAudio(
        pb.PlayAudioRequest(
            audio_uri="file://audio/demo/welcome.wav",
            server_rtp_port=port,
            rtp_target_addr=peer.address_text,
        )
    )
    assert reply.success, reply.message
    live = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))
    speech, rate = read_wav(SPEECH_WAV)
    assert rate == 8000
    collected = []

    async def consume():
        async for message in live:
            assert message.media_type == "audio/L16;rate=16000"
            assert len(message.audio_data) % 640 == 0
            collected.append(message.audio_data)

    reader = asyncio.create_task(consume())
    await send_rtp(peer, port, speech[: 8000 * 3], PCMU)
    await asyncio.sleep(0.3)
    await peer.wait_quiet(0.3, timeout=10)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await asyncio.wait_for(reader, 5)
    peer.close()

    prompt_mono, prompt_rate = decode_container(PROMPT_WAV, "prompt")
    prompt = to_rate(prompt_mono, prompt_rate, 8000)
    sent = peer.decoded(PCMU)
    score, _ = best_alignment(prompt[8000:16000], sent)
    print("prompt correlation", score, len(sent), len(prompt))
    assert score > 0.95
    live_audio = np.frombuffer(b"".join(collected), dtype="<i2")
    reference = to_rate(speech[8000:16000].astype(np.float32) / 32768, 8000, 16000)
    score, lag = best_alignment(reference, live_audio)
    print("live correlation", score, lag, len(live_audio))
    assert score > 0.9
