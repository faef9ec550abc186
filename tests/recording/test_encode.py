"""Unit: encoding the spooled legs into the asked file (audio/encode.encode_recording)."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from sentiric_media.audio.encode import RATES, encode_recording


def write_raw(path: Path, caller: np.ndarray, bot: np.ndarray) -> Path:
    path.write_bytes(np.column_stack((caller, bot)).astype("<i2").tobytes())
    return path


def read_wav_frames(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2
        channels = handle.getnchannels()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return data.reshape(-1, channels), handle.getframerate(), channels


def decode_with_pyav(path: Path) -> tuple[np.ndarray, int, int, str]:
    """All samples as (n, channels) float, the decoded rate, channels, and codec name."""
    blocks = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        for frame in container.decode(stream):
            rate = frame.sample_rate
            channels = len(frame.layout.channels)
            data = frame.to_ndarray()
            data = data.T if frame.format.is_planar else data.reshape(-1, channels)
            blocks.append(data.astype(np.float64))
    return np.concatenate(blocks), rate, channels, codec


def tone(seconds: float, rate: int, frequency: float, amplitude: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_mono_is_a_saturating_sum_without_wrap_around(tmp_path: Path) -> None:
    pairs = [
        (30000, 30000, 32767),
        (-30000, -30000, -32768),
        (32767, 32767, 32767),
        (-32768, -32768, -32768),
        (32767, -32768, -1),
        (20000, 12767, 32767),
        (20000, 12768, 32767),
        (100, -50, 50),
        (0, 0, 0),
    ]
    caller = np.repeat(np.array([p[0] for p in pairs], dtype=np.int16), 100)
    bot = np.repeat(np.array([p[1] for p in pairs], dtype=np.int16), 100)
    raw = write_raw(tmp_path / "audio.s16", caller, bot)
    out = tmp_path / "mono.wav"
    assert encode_recording(raw, 8000, out, "wav", 8000, 1) == len(caller)
    frames, rate, channels = read_wav_frames(out)
    assert (rate, channels) == (8000, 1)
    assert np.array_equal(frames[:, 0], np.repeat([p[2] for p in pairs], 100))


def test_full_scale_legs_in_phase_clip_instead_of_flipping_sign(tmp_path: Path) -> None:
    loud = tone(1.0, 8000, 300, 32767)
    raw = write_raw(tmp_path / "audio.s16", loud, loud)
    out = tmp_path / "mono.wav"
    encode_recording(raw, 8000, out, "wav", 8000, 1)
    mixed = read_wav_frames(out)[0][:, 0].astype(np.int32)
    # Wrap-around would turn a positive peak into a large negative value.
    assert np.all(np.sign(mixed) == np.sign(loud.astype(np.int32)))
    assert mixed.max() == 32767
    assert mixed.min() == -32768


def test_stereo_keeps_caller_left_and_bot_right(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    caller = rng.integers(-32768, 32768, 8000).astype(np.int16)
    bot = rng.integers(-32768, 32768, 8000).astype(np.int16)
    raw = write_raw(tmp_path / "audio.s16", caller, bot)
    out = tmp_path / "stereo.wav"
    encode_recording(raw, 8000, out, "wav", 8000, 2)
    frames, rate, channels = read_wav_frames(out)
    assert (rate, channels) == (8000, 2)
    assert np.array_equal(frames[:, 0], caller)
    assert np.array_equal(frames[:, 1], bot)


def test_a_cut_short_last_frame_is_ignored(tmp_path: Path) -> None:
    raw = write_raw(tmp_path / "audio.s16", np.ones(800, np.int16), np.ones(800, np.int16))
    with raw.open("ab") as handle:
        handle.write(b"\x05\x00\x05")
    out = tmp_path / "out.wav"
    assert encode_recording(raw, 8000, out, "wav", 8000, 2) == 800
    assert len(read_wav_frames(out)[0]) == 800


def test_an_empty_recording_is_a_valid_empty_file(tmp_path: Path) -> None:
    raw = tmp_path / "audio.s16"
    raw.write_bytes(b"")
    out = tmp_path / "empty.wav"
    assert encode_recording(raw, 8000, out, "wav", 16000, 1) == 0
    frames, rate, _ = read_wav_frames(out)
    assert len(frames) == 0
    assert rate == 16000


@pytest.mark.parametrize("source_rate", [8000, 16000])
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("channels", [1, 2])
def test_resampled_length_and_pitch_follow_the_asked_rate(
    tmp_path: Path, source_rate: int, rate: int, channels: int
) -> None:
    seconds = 2.5
    caller = tone(seconds, source_rate, 440, 8000)
    bot = tone(seconds, source_rate, 1000, 8000)
    raw = write_raw(tmp_path / "audio.s16", caller, bot)
    out = tmp_path / "out.wav"
    count = encode_recording(raw, source_rate, out, "wav", rate, channels)
    frames, got_rate, got_channels = read_wav_frames(out)
    assert (got_rate, got_channels) == (rate, channels)
    assert count == len(frames)
    assert abs(len(frames) - seconds * rate) <= rate * 0.002  # within 2 ms
    if channels == 2:
        assert dominant_frequency(frames[:, 0], rate) == pytest.approx(440, abs=2)
        assert dominant_frequency(frames[:, 1], rate) == pytest.approx(1000, abs=2)


def test_resampling_is_seamless_across_encoder_blocks(tmp_path: Path) -> None:
    """Longer than one 10 s block: no glitch or gap where blocks meet."""
    seconds, source_rate, rate = 25, 8000, 16000
    caller = tone(seconds, source_rate, 200, 10000)
    raw = write_raw(tmp_path / "audio.s16", caller, np.zeros_like(caller))
    out = tmp_path / "out.wav"
    encode_recording(raw, source_rate, out, "wav", rate, 2)
    left = read_wav_frames(out)[0][:, 0].astype(np.float64)
    assert abs(len(left) - seconds * rate) <= 32
    ideal = 10000 * np.sin(2 * np.pi * 200 * np.arange(len(left)) / rate)
    # Compare away from the file's ends, where the filter settles.
    best = min(
        np.max(np.abs(left[1000:-1000] - np.roll(ideal, shift)[1000:-1000]))
        for shift in range(-40, 41)
    )
    assert best < 400  # a gap or overlap at a block edge would leave thousands


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (16000, 2), (24000, 1), (48000, 2)])
def test_every_format_decodes_with_the_asked_rate_channels_and_length(
    tmp_path: Path, fmt: str, rate: int, channels: int
) -> None:
    seconds = 2.0
    caller = tone(seconds, 8000, 440, 9000)
    bot = tone(seconds, 8000, 1200, 9000)
    raw = write_raw(tmp_path / "audio.s16", caller, bot)
    out = tmp_path / f"out.{fmt}"
    encode_recording(raw, 8000, out, fmt, rate, channels)
    samples, decoded_rate, decoded_channels, codec = decode_with_pyav(out)
    assert decoded_channels == channels
    assert codec.startswith({"wav": "pcm_s16le", "flac": "flac", "ogg": "opus", "mp3": "mp3"}[fmt])
    if fmt == "ogg":
        # Opus always decodes at 48 kHz; the asked rate is the stream's input rate.
        header = out.read_bytes()
        at = header.find(b"OpusHead")
        assert at >= 0
        _version, head_channels, _skip, input_rate = struct.unpack(
            "<BBHI", header[at + 8 : at + 16]
        )
        assert (input_rate, head_channels) == (rate, channels)
        assert decoded_rate == 48000
    else:
        assert decoded_rate == rate
    assert abs(len(samples) / decoded_rate - seconds) < 0.03
    # The content survived: in stereo each leg keeps its own pitch; mono holds both.
    body = samples[len(samples) // 4 : len(samples) * 3 // 4]
    if channels == 2:
        assert dominant_frequency(body[:, 0], decoded_rate) == pytest.approx(440, abs=5)
        assert dominant_frequency(body[:, 1], decoded_rate) == pytest.approx(1200, abs=5)
    else:
        spectrum = np.abs(np.fft.rfft(body[:, 0]))
        freqs = np.fft.rfftfreq(len(body), 1 / decoded_rate)
        for pitch in (440, 1200):
            near = spectrum[np.abs(freqs - pitch) < 10].max()
            assert near > 20 * np.median(spectrum)


def test_flac_is_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    caller = rng.integers(-20000, 20000, 16000).astype(np.int16)
    bot = rng.integers(-20000, 20000, 16000).astype(np.int16)
    raw = write_raw(tmp_path / "audio.s16", caller, bot)
    out = tmp_path / "out.flac"
    encode_recording(raw, 16000, out, "flac", 16000, 2)
    samples, rate, channels, _ = decode_with_pyav(out)
    assert (rate, channels) == (16000, 2)
    assert np.array_equal(samples[:, 0].astype(np.int16), caller)
    assert np.array_equal(samples[:, 1].astype(np.int16), bot)
