"""Opus (media/codecs/opus.py): PyAV's libopus encoder and our ctypes libopus decoder.

Against independent coders: packets of ffmpeg's own libopus encoder decoded by
ours, and our packets decoded by FFmpeg's native Opus decoder (no libopus
code). Loss: in-band FEC rebuilds a lost packet from the next one far better
than PLC (measured correlation with the intact decode 0.97-0.98 against 0.58);
PLC returns exactly the span asked; DTX, empty and broken payloads never raise.
The encoder follows the peer's fmtp (bandwidth, bitrate, FEC).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import av
import numpy as np
import pytest

from sentiric_media.media.codecs import MediaFormat, opus
from tests.unit.codec_support import (
    correlation,
    encode_all,
    ffmpeg,
    needs_ffmpeg,
    rms,
    similarity,
    speech,
)

pytestmark = pytest.mark.skipif(opus.CODEC is None, reason=str(opus.UNAVAILABLE_REASON))

SAMPLE_RATE = opus.SAMPLE_RATE
MS = SAMPLE_RATE // 1000  # samples per millisecond of the session's Opus audio


def opus_format(ptime: int = 20, **fmtp: str) -> MediaFormat:
    return opus.CODEC.format(111, ptime=ptime, fmtp=fmtp)


def opus_ours(fmtp: dict[str, str], ptime: int = 20) -> list[bytes]:
    media_format = opus_format(ptime, **fmtp)
    return encode_all(speech(SAMPLE_RATE), media_format.new_encoder(), media_format.packet_samples)


@pytest.fixture(scope="module")
def ffmpeg_opus(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Packets of ffmpeg's own libopus encoder (FEC on), read back from an Ogg file."""
    path = tmp_path_factory.mktemp("opus") / "ffmpeg.opus"
    ffmpeg(
        *("-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "-", "-c:a", "libopus"),
        *("-application", "voip", "-frame_duration", "20", "-b:a", "32k"),
        *("-fec", "1", "-packet_loss", "20", str(path)),
        stdin=speech(SAMPLE_RATE).tobytes(),
    )
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [bytes(packet) for packet in container.demux(stream) if packet.size]


def bandwidth(packet: bytes) -> int:
    """Coded audio bandwidth from the TOC byte: NB 0, MB 1, WB 2, SWB 3, FB 4 (RFC 6716)."""
    config = packet[0] >> 3
    if config < 12:  # SILK
        return config // 4
    if config < 16:  # hybrid
        return 3 + (config - 12) // 2
    return (0, 2, 3, 4)[(config - 16) // 4]  # CELT


def kbps(bits: list[bytes]) -> float:
    return sum(map(len, bits)) * 8 / (len(bits) * 20)


@needs_ffmpeg
def test_opus_ffmpeg_packets_decode_with_ours(ffmpeg_opus: list[bytes]) -> None:
    decoder = opus_format().new_decoder()
    decoded = np.concatenate([decoder.decode(packet) for packet in ffmpeg_opus])
    score, lag = similarity(speech(SAMPLE_RATE), decoded, 2000)
    assert score >= 0.9  # measured 0.960
    assert 6 * MS <= lag <= 7 * MS  # the encoder's 6.5 ms lookahead


def test_opus_our_packets_decode_with_ffmpegs_own_decoder() -> None:
    # FFmpeg's native Opus decoder shares no code with libopus.
    native_decoder = av.CodecContext.create("opus", "r")
    native_decoder.sample_rate = 48000  # FFmpeg's Opus decoder always outputs 48 kHz
    native_decoder.layout = "mono"
    frames = [
        frame for packet in opus_ours({}) for frame in native_decoder.decode(av.Packet(packet))
    ]
    assert {frame.samples for frame in frames} == {960}
    decoded = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])
    score, lag = similarity(speech(48000), decoded, 2000)
    assert score >= 0.93  # measured 0.976
    assert 300 <= lag <= 330  # measured 311


@pytest.mark.parametrize(("ptime", "samples"), [(10, 10 * MS), (40, 40 * MS), (60, 60 * MS)])
def test_opus_packets_last_one_ptime(ptime: int, samples: int) -> None:
    bits = opus_ours({}, ptime)
    decoder = opus_format(ptime).new_decoder()
    assert {len(decoder.decode(packet)) for packet in bits} == {samples}
    with pytest.raises(ValueError, match=f"{samples} samples"):
        opus_format(ptime).new_encoder().encode(speech(SAMPLE_RATE)[: samples - 40])


def test_opus_encoder_follows_the_peers_fmtp() -> None:
    default = opus_ours({})
    assert max(map(bandwidth, default)) == 2  # 16 kHz input: coded wideband
    assert set(map(bandwidth, opus_ours({"maxplaybackrate": "8000"}))) == {0}
    assert max(map(bandwidth, opus_ours({"maxplaybackrate": "16000"}))) <= 2
    assert 16 <= kbps(default) <= 36  # VBR under the 32 kb/s cap (measured 23 at 16 kHz)
    assert kbps(opus_ours({"maxaveragebitrate": "12000"})) <= 13.5
    assert len(set(map(len, opus_ours({"cbr": "1", "maxaveragebitrate": "24000"})))) == 1
    with_fec = opus_ours({"useinbandfec": "1"})
    assert sum(opus.fec_frame_samples(packet) > 0 for packet in with_fec) > len(with_fec) / 2
    # RFC 7587: no useinbandfec means the peer would not use FEC, so none is sent.
    assert not any(opus.fec_frame_samples(packet) for packet in default)


def lose_and_recover(bits: list[bytes], lost: set[int], recover: str) -> np.ndarray:
    """The lost packets' audio as a decoder rebuilt it ('fec', 'plc') from the stream."""
    decoder = opus_format().new_decoder()
    rebuilt = []
    for index, packet in enumerate(bits):
        if index not in lost:
            decoder.decode(packet)
            continue
        audio = decoder.decode_fec(bits[index + 1], 20 * MS) if recover == "fec" else None
        rebuilt.append(decoder.conceal(20 * MS) if audio is None else audio)
    return np.concatenate(rebuilt)


@needs_ffmpeg
@pytest.mark.parametrize("encoder", ["ours", "ffmpeg"])
def test_opus_fec_rebuilds_a_lost_packet_from_the_next(
    encoder: str, ffmpeg_opus: list[bytes]
) -> None:
    bits = opus_ours({"useinbandfec": "1"}) if encoder == "ours" else ffmpeg_opus
    lost = set(range(7, len(bits) - 1, 9))
    decoder = opus_format().new_decoder()
    decoded = [decoder.decode(packet) for packet in bits]
    intact = np.concatenate([decoded[index] for index in sorted(lost)])
    fec = correlation(intact, lose_and_recover(bits, lost, "fec"))
    plc = correlation(intact, lose_and_recover(bits, lost, "plc"))
    assert fec >= 0.9  # measured 0.97 (ours) and 0.98 (ffmpeg)
    assert plc <= 0.8  # measured 0.58: FEC is real recovery, not a smooth guess


def test_opus_fec_needs_lbrr_in_the_next_packet() -> None:
    decoder = opus_format().new_decoder()
    without = opus_ours({})
    for packet in without[:5]:
        decoder.decode(packet)
    assert decoder.decode_fec(without[5], 20 * MS) is None
    with_fec = opus_ours({"useinbandfec": "1"})
    index = next(i for i, packet in enumerate(with_fec) if opus.fec_frame_samples(packet))
    assert decoder.decode_fec(with_fec[index], 10 * MS) is None  # shorter than the LBRR frame
    rebuilt = decoder.decode_fec(with_fec[index], 50 * MS)  # 30 ms PLC, then 20 ms FEC
    assert rebuilt is not None
    assert len(rebuilt) == 50 * MS
    for payload in (b"", bytes([with_fec[index][0]]), b"\xff\xff"):
        assert decoder.decode_fec(payload, 20 * MS) is None


def test_opus_plc_returns_exactly_what_is_asked() -> None:
    decoder = opus_format().new_decoder()
    for packet in opus_ours({})[:20]:
        decoder.decode(packet)
    assert rms(decoder.conceal(20 * MS)) > 10  # PLC continues the speech, it is not silence
    for samples in (20 * MS, 40, 1000, 7000, 0):
        concealed = decoder.conceal(samples)
        assert len(concealed) == samples
        assert concealed.dtype == np.int16


def test_opus_dtx_empty_and_broken_payloads_never_raise() -> None:
    bits = opus_ours({}, ptime=40)
    decoder = opus_format(40).new_decoder()
    assert len(decoder.decode(bits[0])) == 40 * MS
    assert len(decoder.decode(b"")) == 40 * MS  # as long as the last packet
    assert len(decoder.decode(bytes([bits[0][0]]))) == 40 * MS  # DTX: TOC byte only
    assert len(decoder.decode(bytes([0x08]))) == 20 * MS  # DTX of a 20 ms SILK config
    for broken in (b"\xff\xff\xff", b"\x0b", bytes(range(3, 200))):
        pcm = decoder.decode(broken)
        assert pcm.dtype == np.int16
        assert 0 < len(pcm) <= opus.MAX_PACKET_SAMPLES
    assert len(decoder.decode(bits[1])) == 40 * MS


def bundled_libopus() -> ctypes.CDLL | None:
    """The libopus ≥ 1.5 inside the PyAV wheel, which has opus_packet_has_lbrr, if found."""
    for path in sorted((Path(av.__file__).parent.parent / "av.libs").glob("libopus-*.so*")):
        library = ctypes.CDLL(str(path))
        if hasattr(library, "opus_packet_has_lbrr"):
            library.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
            return library
    return None


@needs_ffmpeg
@pytest.mark.parametrize("ptime", [20, 40, 60])
def test_opus_fec_detection_agrees_with_libopus_1_5(ptime: int, ffmpeg_opus: list[bytes]) -> None:
    # Debian's libopus 1.3 lacks opus_packet_has_lbrr; our reading of the LBRR bit must
    # give its answer for every packet (SILK and hybrid, 1 to 3 SILK frames, code 0-3).
    library = bundled_libopus()
    if library is None:
        pytest.skip("no libopus >= 1.5 in this PyAV wheel")
    bits = opus_ours({"useinbandfec": "1"}, ptime) + ffmpeg_opus
    theirs = [library.opus_packet_has_lbrr(packet, len(packet)) > 0 for packet in bits]
    assert [opus.fec_frame_samples(packet) > 0 for packet in bits] == theirs
    assert 0 < sum(theirs) < len(bits)
