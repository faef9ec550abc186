"""The codec registry (media/codecs/__init__.py) with G.722, Opus and G.729, and its fallbacks.

The codecs themselves are tested against independent implementations in
test_codec_g722.py, test_codec_opus.py and test_codec_g729.py. Here: SDP
names, rates and payload types, and that a missing native library (libopus0,
libbcg729-0) leaves the service importable, that codec out, and a reason that
says what to install; and that the C state of each coder is freed with its object.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Callable

import pytest

from sentiric_media.media import codecs
from sentiric_media.media.codecs import g722, g729, native, opus

MODULES = {"G722": g722, "opus": opus, "G729": g729}


def test_unavailable_lists_exactly_the_codecs_without_their_library() -> None:
    missing = {name for name, module in MODULES.items() if module.CODEC is None}
    assert set(codecs.UNAVAILABLE) == missing
    for name, module in MODULES.items():
        assert (module.CODEC is None) == (module.UNAVAILABLE_REASON is not None)
        assert codecs.find_codec(name) is module.CODEC


def test_g722_is_16khz_audio_on_an_8khz_clock() -> None:
    codec = codecs.find_codec("g722")
    assert codec is not None
    assert (codec.rtpmap, codec.clock_rate, codec.sample_rate) == ("G722/8000", 8000, 16000)
    assert codecs.STATIC_PAYLOAD_TYPES[9] is codec
    assert codec.format(ptime=20).packet_samples == 320  # 160 RTP ticks, 320 samples


@pytest.mark.skipif(opus.CODEC is None, reason=str(opus.UNAVAILABLE_REASON))
def test_opus_is_always_two_channels_in_sdp_and_has_no_static_type() -> None:
    codec = codecs.find_codec("OPUS")
    assert codec is not None
    assert (codec.rtpmap, codec.static_payload_type, codec.clock_rate) == (
        "opus/48000/2",
        None,
        48000,
    )
    assert codec.sample_rate == 16000  # wideband audio on the 48 kHz RTP clock
    assert codec.fmtp["useinbandfec"] == "1"
    assert codec.ptimes[0] == 20
    assert 30 not in codec.ptimes
    assert codec.format(111, ptime=50).ptime == 20  # Opus has no 50 ms frame
    with pytest.raises(ValueError, match="no static payload type"):
        codec.format()


@pytest.mark.skipif(g729.CODEC is None, reason=str(g729.UNAVAILABLE_REASON))
def test_g729_answers_without_annex_b() -> None:
    codec = codecs.find_codec("G729")
    assert codec is not None
    assert (codec.rtpmap, dict(codec.fmtp)) == ("G729/8000", {"annexb": "no"})
    assert codecs.STATIC_PAYLOAD_TYPES[18] is codec


def test_a_missing_library_or_symbol_is_a_reason_not_an_error() -> None:
    library, reason = native.load_library("libnothing.so.0", "nothing", "libnothing0", {})
    assert library is None
    assert "apt-get install libnothing0" in str(reason)
    library, reason = native.load_library(
        "libopus.so.0", "opus", "libopus0", {"opus_no_such_function": (None, ())}
    )
    assert library is None
    assert "opus_no_such_function" in str(reason)


def test_service_imports_without_libopus_and_libbcg729() -> None:
    # A fresh interpreter in which neither library loads: the registry still builds,
    # without those two codecs, and says which package to install.
    script = """
import ctypes, ctypes.util
real = ctypes.CDLL
def cdll(name, *args, **kwargs):
    if name and ("opus" in name or "bcg729" in name):
        raise OSError(name + ": cannot open shared object file")
    return real(name, *args, **kwargs)
ctypes.CDLL = cdll
ctypes.util.find_library = lambda name: None
from sentiric_media.media import codecs
print(sorted(codecs.CODECS))
print(codecs.UNAVAILABLE)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    assert "['g722', 'pcma', 'pcmu']" in result.stdout
    assert "libopus.so.0 not found: apt-get install libopus0" in result.stdout
    assert "libbcg729.so.0 not found: apt-get install libbcg729-0" in result.stdout


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: opus.CODEC.format(111).new_decoder(), id="opus-decoder"),
        pytest.param(lambda: g729.CODEC.format().new_decoder(), id="g729-decoder"),
        pytest.param(lambda: g729.CODEC.format().new_encoder(), id="g729-encoder"),
    ],
)
def test_native_coder_state_is_freed_with_its_object(make: Callable[[], object]) -> None:
    if opus.CODEC is None or g729.CODEC is None:
        pytest.skip("needs libopus0 and libbcg729-0")
    coder = make()
    close = coder._close  # the weakref.finalize that frees the C state
    assert close.alive
    del coder
    gc.collect()
    assert not close.alive
