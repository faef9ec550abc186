"""PlayAudio: URI schemes, prompt audio at the phone, queueing, legacy field order, errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import grpc
import numpy as np
import pytest

from sentiric_media.audio.decode import decode_container, to_rate
from sentiric_media.media.codecs.g711 import ALAW
from tests.conftest import PROMPT_WAV
from tests.integration.helpers import (
    PROMPT_URI,
    allocate,
    data_uri,
    decoded,
    encode_container,
    play,
    rpc_error,
    rtp_packets,
    send_paced,
    speech,
    wav_uri,
)
from tests.support import best_alignment


def _prompt_8k() -> np.ndarray:
    mono, rate = decode_container(PROMPT_WAV, "prompt")
    return to_rate(mono, rate, 8000)


def _resample(samples: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    return to_rate(samples.astype(np.float32) / 32768, source_rate, rate)


async def _received_after_quiet(peer, packets: int, within: float = 5.0) -> np.ndarray:
    await peer.wait_for_packets(packets, timeout=within)
    await peer.wait_quiet(0.2, timeout=within)
    return decoded(peer)


# ---- what reaches the phone -------------------------------------------------------------


async def test_file_prompt_reaches_the_peer(stub, peer):
    port = await allocate(stub, "play-file")
    reply = await play(stub, port, PROMPT_URI, peer.address_text)
    assert reply.success, reply.message
    await peer.wait_for_packets(60, timeout=5)
    received = decoded(peer)
    assert all(p.payload_type == 0 for p in peer.packets)
    assert all(len(p.payload) == 160 for p in peer.packets)
    score, lag = best_alignment(_prompt_8k()[2000:8000], received)
    assert score > 0.95
    assert abs(lag - 2000) <= 160  # the prompt starts with its first sample


async def test_file_prompt_with_leading_slash(stub, peer):
    port = await allocate(stub, "play-file-slash")
    reply = await play(stub, port, "file:///audio/demo/welcome.wav", peer.address_text)
    assert reply.success
    await peer.wait_for_packets(30, timeout=5)
    score, _ = best_alignment(_prompt_8k()[1000:4000], decoded(peer))
    assert score > 0.95


async def test_data_wav_22050_stereo(stub, peer):
    source = speech()[8000:11200]
    mono = _resample(source, 8000, 22050)
    stereo = np.stack((mono, mono), axis=1)
    port = await allocate(stub, "play-wav")
    reply = await play(stub, port, wav_uri(stereo, 22050), peer.address_text)
    assert reply.success, reply.message
    received = await _received_after_quiet(peer, 20)
    assert 19 <= len(peer.packets) <= 21  # 0.4 s, not 0.8 s (stereo is not interleaved mono)
    score, _ = best_alignment(source[400:2800], received)
    assert score > 0.9


async def test_data_l16_raw_pcm_8000(stub, peer):
    source = speech()[16000:19200]
    uri = data_uri("audio/L16;rate=8000", source.astype("<i2").tobytes())
    port = await allocate(stub, "play-l16")
    assert (await play(stub, port, uri, peer.address_text)).success
    received = await _received_after_quiet(peer, 20)
    assert 19 <= len(peer.packets) <= 21
    score, _ = best_alignment(source[400:2800], received)
    assert score > 0.9


async def test_data_pcm_defaults_to_16k(stub, peer):
    source = speech()[24000:27200]
    pcm16k = _resample(source, 8000, 16000)
    uri = data_uri("audio/pcm", pcm16k.astype("<i2").tobytes())
    port = await allocate(stub, "play-pcm")
    assert (await play(stub, port, uri, peer.address_text)).success
    received = await _received_after_quiet(peer, 20)
    assert 19 <= len(peer.packets) <= 21  # 0.4 s at 16 kHz: played at the right speed
    score, _ = best_alignment(source[400:2800], received)
    assert score > 0.9


@pytest.mark.parametrize(
    ("mime", "fmt"), [("audio/flac", "flac"), ("audio/ogg", "ogg"), ("audio/mpeg", "mp3")]
)
async def test_data_compressed_containers(stub, peer, mime, fmt):
    source = speech()[32000:35200]
    port = await allocate(stub, f"play-{fmt}")
    uri = data_uri(mime, encode_container(source, 8000, fmt))
    assert (await play(stub, port, uri, peer.address_text)).success
    received = await _received_after_quiet(peer, 20)
    assert 19 <= len(peer.packets) <= 23
    score, _ = best_alignment(source[400:2800], received)
    assert score > 0.85


async def test_play_answers_before_the_prompt_finishes(stub, peer):
    port = await allocate(stub, "play-fast-answer")
    started = time.monotonic()
    reply = await play(stub, port, PROMPT_URI, peer.address_text)
    elapsed = time.monotonic() - started
    assert reply.success
    assert elapsed < 2.0
    # The prompt (5.1 s) is still playing when the answer is there.
    assert len(peer.packets) < 200
    assert "queued" in reply.message


async def test_prompts_play_in_order_without_gap(stub, peer):
    first, second = speech()[0:4800], speech()[40000:44800]
    port = await allocate(stub, "play-order")
    await play(stub, port, wav_uri(first), peer.address_text)
    await play(stub, port, wav_uri(second), peer.address_text)
    received = await _received_after_quiet(peer, 60)
    assert len(peer.packets) == 60
    score_a, lag_a = best_alignment(first[600:4200], received)
    score_b, lag_b = best_alignment(second[600:4200], received)
    assert score_a > 0.9
    assert score_b > 0.9
    assert lag_a < lag_b
    assert abs((lag_b - lag_a) - 4800) <= 160  # B starts right where A ends
    stamps = [p.timestamp for p in peer.packets]
    assert all((b - a) % 2**32 == 160 for a, b in itertools.pairwise(stamps))


async def test_play_without_target_after_rtp_sends_to_the_caller(stub, peer):
    port = await allocate(stub, "play-latched")
    for packet in rtp_packets(speech()[:800]):
        peer.send(packet, port)
    await asyncio.sleep(0.1)
    reply = await play(stub, port, wav_uri(speech()[:4000]))
    assert reply.success
    await peer.wait_for_packets(20, timeout=3)
    assert len(peer.packets) >= 20


# ---- legacy field order ------------------------------------------------------------------


async def test_legacy_field_order_is_accepted(stub, peer, caplog):
    caplog.set_level(logging.WARNING, logger="sentiric_media")
    port = await allocate(stub, "play-legacy")
    reply = await play(stub, port, peer.address_text, PROMPT_URI)  # swapped
    assert reply.success, reply.message
    await peer.wait_for_packets(30, timeout=5)
    score, _ = best_alignment(_prompt_8k()[1000:4000], decoded(peer))
    assert score > 0.95
    # A second legacy call works too; the deprecation warning is logged once.
    assert (await play(stub, port, peer.address_text, PROMPT_URI)).success
    warnings = [r for r in caplog.records if "field order" in r.getMessage()]
    assert len(warnings) == 1


# ---- errors --------------------------------------------------------------------------------


async def test_unknown_port_is_not_found(stub, peer):
    details = await rpc_error(
        play(stub, 40002, PROMPT_URI, peer.address_text), grpc.StatusCode.NOT_FOUND
    )
    assert "40002" in details


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("http://x/a.wav", "http"),
        ("ftp://host/a.wav", "ftp"),
        ("audio/demo/welcome.wav", "audio/demo/welcome.wav"),
        ("control://foo", "foo"),
        ("control://", "control://"),
    ],
)
async def test_bad_uri_is_invalid_argument(stub, peer, uri, named):
    port = await allocate(stub, "play-bad-uri")
    details = await rpc_error(
        play(stub, port, uri, peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert named in details


async def test_empty_uri_is_invalid_argument(stub, peer):
    port = await allocate(stub, "play-empty-uri")
    details = await rpc_error(
        play(stub, port, "", peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "audio_uri" in details


@pytest.mark.parametrize(
    "uri",
    [
        "file://../secret.wav",
        "file://%2e%2e/secret.wav",
        "file:///../secret.wav",
        "file://audio/../../secret.wav",
        "file://audio/%2E%2E/%2e%2e/secret.wav",
    ],
)
async def test_path_traversal_is_invalid_argument_and_reads_nothing(
    service, stub, peer, tmp_path, uri
):
    assert (tmp_path / "secret.wav").is_file()
    port = await allocate(stub, "play-traversal")
    details = await rpc_error(
        play(stub, port, uri, peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert uri in details
    assert service.prompts.misses == 0  # nothing was decoded
    await asyncio.sleep(0.1)
    assert not peer.packets


async def test_symlink_out_of_assets_is_invalid_argument(service, stub, peer, assets, tmp_path):
    (assets / "audio" / "link.wav").symlink_to(tmp_path / "secret.wav")
    port = await allocate(stub, "play-symlink")
    uri = "file://audio/link.wav"
    details = await rpc_error(
        play(stub, port, uri, peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert uri in details


async def test_missing_file_is_not_found(stub, peer):
    port = await allocate(stub, "play-missing")
    uri = "file://audio/demo/nope.wav"
    details = await rpc_error(play(stub, port, uri, peer.address_text), grpc.StatusCode.NOT_FOUND)
    assert uri in details


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        (data_uri("audio/wav", b"this is not audio at all " * 40), "data:audio/wav"),
        ("data:audio/wav;base64,", "data:audio/wav"),
        ("data:audio/wav,plain-text", "data:audio/wav"),
        ("data:audio/wav;base64", "data:audio/wav"),
        (data_uri("audio/L16;rate=abc", b"\x00\x01" * 400), "abc"),
        (data_uri("audio/L16;rate=8000", b"\x01"), "1 bytes"),
    ],
)
async def test_undecodable_data_uri_is_invalid_argument(stub, peer, uri, named):
    port = await allocate(stub, "play-undecodable")
    details = await rpc_error(
        play(stub, port, uri, peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert named in details


async def test_oversized_data_uri_is_invalid_argument(make_service, peers):
    app, stub = await make_service(max_data_uri_bytes=2048)
    peer = await peers()
    port = await allocate(stub, "play-oversized")
    small = wav_uri(speech()[:800])  # 1.6 KB of WAV: allowed
    assert (await play(stub, port, small, peer.address_text)).success
    big = wav_uri(speech()[:4000])  # 8 KB: over the limit
    details = await rpc_error(
        play(stub, port, big, peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "2048" in details
    assert app.prompts.misses == 1  # only the small one was decoded


@pytest.mark.parametrize("target", ["nonsense", "1.2.3.4:99999", "host:", "1.2.3.4:0", ":5000"])
async def test_bad_target_address_is_invalid_argument(stub, target):
    port = await allocate(stub, "play-bad-target")
    details = await rpc_error(
        play(stub, port, PROMPT_URI, target), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert target in details


async def test_no_target_and_no_rtp_is_invalid_argument(stub):
    port = await allocate(stub, "play-no-target")
    details = await rpc_error(play(stub, port, PROMPT_URI), grpc.StatusCode.INVALID_ARGUMENT)
    assert str(port) in details
    assert "rtp_target_addr" in details


async def test_set_target_without_address_is_invalid_argument(stub):
    port = await allocate(stub, "play-set-target-empty")
    details = await rpc_error(
        play(stub, port, "control://set_target"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "set_target" in details


async def test_control_commands_play_nothing(service, stub, peer):
    port = await allocate(stub, "play-control")
    reply = await play(stub, port, "control://set_target", peer.address_text)
    assert reply.success
    assert peer.address_text in reply.message
    assert (await play(stub, port, "control://disable_echo")).success
    await asyncio.sleep(0.1)
    assert not peer.packets
    assert len(service.manager.by_port[port].playout) == 0


async def test_enable_echo_loops_the_caller_back(stub, peer):
    port = await allocate(stub, "play-echo")
    assert (await play(stub, port, "control://enable_echo", peer.address_text)).success
    source = speech()[8000:12800]
    await send_paced(peer, port, rtp_packets(source))
    await peer.wait_quiet(0.2, timeout=3)
    score, _ = best_alignment(source[600:4200], decoded(peer))
    assert score > 0.9
    assert (await play(stub, port, "control://disable_echo")).success
    count = len(peer.packets)
    await send_paced(
        peer, port, rtp_packets(source[:1600], first_sequence=1100, first_timestamp=20000)
    )
    await asyncio.sleep(0.2)
    assert len(peer.packets) - count <= 6  # what was in the echo pipeline at most


async def test_answers_in_the_callers_g711_law(stub, peer):
    port = await allocate(stub, "play-pcma")
    for packet in rtp_packets(speech()[:800], payload_type=8):
        peer.send(packet, port)  # PCMA (the payload bytes do not matter here)
    await asyncio.sleep(0.1)
    source = speech()[8000:11200]
    assert (await play(stub, port, wav_uri(source))).success
    await peer.wait_for_packets(20, timeout=3)
    await peer.wait_quiet(0.2, timeout=3)
    assert {p.payload_type for p in peer.packets} == {8}
    received = np.concatenate([ALAW.decode(p.payload) for p in peer.packets])
    score, _ = best_alignment(source[400:2800], received)
    assert score > 0.9


async def test_target_of_the_wrong_address_family_is_refused(service, stub):
    port = await allocate(stub, "play-ipv6")
    target = "[::1]:5000"
    refused: grpc.aio.AioRpcError | None = None
    try:
        await play(stub, port, wav_uri(speech()[:1600]), target)
    except grpc.aio.AioRpcError as error:
        refused = error
    if refused is not None:
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert target in (refused.details() or "")
    else:
        await asyncio.sleep(0.3)
        assert service.clock.member_errors == 0
