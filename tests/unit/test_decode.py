"""Prompt decoding (audio/decode.py and prompts.decode_prompt): containers, raw PCM, resampling.

Test signals are sine waves written with the `wave` module (and converted with
the `ffmpeg` command line for MP3, OGG/Opus and FLAC when it is installed).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.audio.decode import decode_container, decode_raw_pcm, to_rate
from sentiric_media.audio.prompts import decode_prompt
from sentiric_media.audio.uri import DataAudio, FileAudio
from sentiric_media.errors import InvalidArgument

TONE_HZ = 440.0
AMPLITUDE = 0.5  # of full scale
FFMPEG = shutil.which("ffmpeg")


def sine(
    rate: int, seconds: float, freq: float = TONE_HZ, amplitude: float = AMPLITUDE
) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def wav_bytes(channels: list[np.ndarray], rate: int, sample_width: int = 2) -> bytes:
    """A PCM WAV of float channels in [-1, 1] at the given sample width."""
    stacked = np.stack(channels, axis=1)
    if sample_width == 1:
        data = np.rint(stacked * 127 + 128).astype(np.uint8).tobytes()
    elif sample_width == 2:
        data = np.rint(stacked * 32767).astype("<i2").tobytes()
    elif sample_width == 3:
        ints = np.rint(stacked * 8388607).astype("<i4").reshape(-1)
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    else:
        data = np.rint(stacked * 2147483647).astype("<i4").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(len(channels))
        handle.setsampwidth(sample_width)
        handle.setframerate(rate)
        handle.writeframes(data)
    return buffer.getvalue()


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def data_source(payload: bytes, mime: str = "audio/wav", **params: str) -> DataAudio:
    return DataAudio(f"data:{mime};base64", mime, payload, dict(params))


# --- WAV at any rate, mono and stereo ------------------------------------------------------------


@pytest.mark.parametrize("out_rate", [8000, 16000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("in_rate", [8000, 16000, 22050, 44100])
def test_wav_is_decoded_and_resampled(
    in_rate: int, channels: int, out_rate: int, tmp_path: Path
) -> None:
    seconds = 1.25
    tone = sine(in_rate, seconds)
    path = tmp_path / "tone.wav"
    path.write_bytes(wav_bytes([tone] * channels, in_rate))
    samples = decode_prompt(FileAudio("file://tone.wav", path), out_rate)
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    assert abs(len(samples) - seconds * out_rate) <= out_rate / 1000  # within 1 ms
    assert abs(dominant_frequency(samples, out_rate) - TONE_HZ) <= 5
    # Level kept: the RMS of a sine of amplitude A is A/√2.
    middle = samples[out_rate // 10 : -out_rate // 10]
    assert rms(middle) == pytest.approx(AMPLITUDE * 32767 / np.sqrt(2), rel=0.01)


def test_wav_from_memory_equals_wav_from_file(tmp_path: Path) -> None:
    payload = wav_bytes([sine(22050, 0.5)], 22050)
    path = tmp_path / "tone.wav"
    path.write_bytes(payload)
    from_file = decode_prompt(FileAudio("file://tone.wav", path), 8000)
    from_memory = decode_prompt(data_source(payload), 8000)
    np.testing.assert_array_equal(from_file, from_memory)


def test_stereo_channels_are_averaged() -> None:
    rate = 16000
    left = sine(rate, 1.0, 440.0, 0.6)
    right = sine(rate, 1.0, 1000.0, 0.2)
    samples = decode_prompt(data_source(wav_bytes([left, right], rate)), rate).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples)) * 2 / len(samples)
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    # Each tone is present at half its amplitude: the mean of the two channels.
    assert spectrum[np.argmin(np.abs(freqs - 440))] == pytest.approx(0.3 * 32767, rel=0.02)
    assert spectrum[np.argmin(np.abs(freqs - 1000))] == pytest.approx(0.1 * 32767, rel=0.02)


def test_opposite_stereo_channels_cancel() -> None:
    tone = sine(8000, 0.5)
    samples = decode_prompt(data_source(wav_bytes([tone, -tone], 8000)), 8000)
    assert np.abs(samples).max() <= 1


@pytest.mark.parametrize("sample_width", [1, 2, 3, 4])
def test_wav_sample_widths_are_scaled_to_full_scale(sample_width: int) -> None:
    payload = wav_bytes([sine(8000, 0.5)], 8000, sample_width)
    samples = decode_prompt(data_source(payload), 8000)
    assert rms(samples) == pytest.approx(AMPLITUDE * 32767 / np.sqrt(2), rel=0.02)
    assert abs(dominant_frequency(samples, 8000) - TONE_HZ) <= 5


def test_decode_container_returns_float_mono_at_the_source_rate() -> None:
    mono, rate = decode_container(wav_bytes([sine(22050, 0.2)] * 2, 22050), "label")
    assert rate == 22050
    assert mono.ndim == 1
    assert len(mono) == round(22050 * 0.2)
    assert np.abs(mono).max() == pytest.approx(AMPLITUDE, abs=0.01)


def test_decoded_prompt_is_read_only() -> None:
    samples = decode_prompt(data_source(wav_bytes([sine(8000, 0.1)], 8000)), 8000)
    assert not samples.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        samples[0] = 1


# --- raw PCM -------------------------------------------------------------------------------------


def test_raw_l16_with_rate_is_resampled() -> None:
    pcm = np.rint(sine(8000, 1.0) * 32767).astype("<i2")
    source = data_source(pcm.tobytes(), "audio/l16", rate="8000")
    samples = decode_prompt(source, 16000)
    assert abs(len(samples) - 16000) <= 16
    assert abs(dominant_frequency(samples, 16000) - TONE_HZ) <= 5


def test_raw_pcm_defaults_to_16000() -> None:
    pcm = np.rint(sine(16000, 1.0) * 32767).astype("<i2")
    samples = decode_prompt(data_source(pcm.tobytes(), "audio/pcm"), 8000)
    assert abs(len(samples) - 8000) <= 8
    assert abs(dominant_frequency(samples, 8000) - TONE_HZ) <= 5
    mono, rate = decode_raw_pcm(pcm.tobytes(), {})
    assert rate == 16000
    assert len(mono) == 16000


def test_raw_pcm_at_the_session_rate_keeps_its_samples() -> None:
    pcm = np.rint(sine(8000, 0.5) * 32767 * 0.4).astype("<i2")
    samples = decode_prompt(data_source(pcm.tobytes(), "audio/l16", rate="8000"), 8000)
    assert len(samples) == len(pcm)
    assert np.abs(samples.astype(np.int32) - pcm).max() <= 1


def test_raw_pcm_at_the_session_rate_is_bit_exact() -> None:
    pcm = np.arange(-32768, 32768, 3).astype("<i2")
    samples = decode_prompt(data_source(pcm.tobytes(), "audio/pcm", rate="16000"), 16000)
    np.testing.assert_array_equal(samples, pcm)


def test_raw_pcm_channels_are_averaged() -> None:
    frames = np.array([[1000, 3000], [-2000, 2000], [32767, 32767]], dtype="<i2")
    mono, rate = decode_raw_pcm(frames.tobytes(), {"channels": "2", "rate": "8000"})
    assert rate == 8000
    np.testing.assert_allclose(mono * 32768, [2000, 0, 32767], atol=0.01)


def test_raw_pcm_odd_trailing_byte_is_ignored() -> None:
    mono, _ = decode_raw_pcm(np.array([100, -100], "<i2").tobytes() + b"\x7f", {})
    np.testing.assert_allclose(mono * 32768, [100, -100])


@pytest.mark.parametrize(
    ("payload", "params", "match"),
    [
        (b"\x01", {}, "no whole sample"),
        (b"\x01\x02\x03", {"channels": "2"}, "no whole sample"),
        (b"\x00\x00", {"rate": "abc"}, "rate='abc'"),
        (b"\x00\x00", {"rate": "100"}, "rate=100"),
        (b"\x00\x00", {"rate": "999999"}, "rate=999999"),
        (b"\x00\x00", {"channels": "0"}, "channels=0"),
        (b"\x00\x00", {"channels": "9"}, "channels=9"),
    ],
)
def test_bad_raw_pcm_is_invalid_argument(
    payload: bytes, params: dict[str, str], match: str
) -> None:
    with pytest.raises(InvalidArgument, match=match):
        decode_raw_pcm(payload, params)


# --- what cannot be decoded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"this is not audio at all" * 10,
        bytes(range(256)) * 8,
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a WAV header cut short
        np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    ],
    ids=["text", "ramp", "cut-wav", "random"],
)
def test_undecodable_bytes_are_invalid_argument(payload: bytes) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_prompt(data_source(payload, "audio/mpeg"), 8000)
    assert "data:audio/mpeg" in str(info.value)  # the message names the source


def test_wav_without_samples_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="no audio"):
        decode_prompt(data_source(wav_bytes([np.zeros(0)], 8000)), 8000)


def test_missing_file_is_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"file://gone\.wav"):
        decode_prompt(FileAudio("file://gone.wav", tmp_path / "gone.wav"), 8000)


# --- to_rate -------------------------------------------------------------------------------------


def test_to_rate_saturates_instead_of_wrapping() -> None:
    samples = to_rate(np.array([1.5, -1.5, 1.0, -1.0, 0.0], dtype=np.float32), 8000, 8000)
    assert samples.tolist() == [32767, -32768, 32767, -32768, 0]


def test_to_rate_of_nothing() -> None:
    assert len(to_rate(np.zeros(0, dtype=np.float32), 44100, 8000)) == 0


# --- compressed formats through the ffmpeg command line ------------------------------------------


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("formats") / "tone.wav"
    path.write_bytes(wav_bytes([sine(44100, 2.0)] * 2, 44100))
    return path


@pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg command line is not installed")
@pytest.mark.parametrize(
    ("suffix", "codec"),
    [("mp3", "libmp3lame"), ("ogg", "libopus"), ("opus", "libopus"), ("flac", "flac")],
)
@pytest.mark.parametrize("out_rate", [8000, 16000])
def test_compressed_formats_made_by_ffmpeg(
    suffix: str, codec: str, out_rate: int, tone_wav: Path
) -> None:
    assert FFMPEG is not None
    target = tone_wav.with_name(f"tone-{codec}.{suffix}")
    if not target.exists():
        command = [FFMPEG, "-nostdin", "-loglevel", "error", "-y", "-i", str(tone_wav)]
        result = subprocess.run(
            [*command, "-c:a", codec, str(target)],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            pytest.skip(f"ffmpeg cannot encode {codec}: {result.stderr.decode()[-200:]}")
    samples = decode_prompt(data_source(target.read_bytes(), f"audio/{suffix}"), out_rate)
    # Lossy codecs add or trim a little: the duration stays within 60 ms of 2 s.
    assert abs(len(samples) - 2 * out_rate) <= 0.06 * out_rate
    assert abs(dominant_frequency(samples, out_rate) - TONE_HZ) <= 5
    middle = samples[out_rate // 4 : -out_rate // 4]
    assert rms(middle) == pytest.approx(AMPLITUDE * 32767 / np.sqrt(2), rel=0.1)


def test_audio_longer_than_the_limit_is_refused_while_decoding() -> None:
    payload = wav_bytes([sine(8000, 3.0)], 8000)
    with pytest.raises(InvalidArgument, match="longer than 2 s"):
        decode_container(payload, "data:audio/wav", max_seconds=2.0)
    assert len(decode_container(payload, "data:audio/wav", max_seconds=4.0)[0]) == 24000


def test_raw_pcm_longer_than_the_limit_is_refused() -> None:
    payload = np.zeros(8000 * 3, dtype="<i2").tobytes()
    with pytest.raises(InvalidArgument, match="longer than 2 s"):
        decode_raw_pcm(payload, {"rate": "8000"}, max_seconds=2.0)
    with pytest.raises(InvalidArgument, match="longer than 2 s"):
        decode_prompt(data_source(payload, "audio/l16", rate="8000"), 8000, max_seconds=2.0)
