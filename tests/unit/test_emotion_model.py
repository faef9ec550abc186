"""The ONNX speech-emotion path, on tiny models the test builds with onnx's helper API:
loudness (mean |x|) → fixed weights → three classes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx  # a dev dependency: the test builds its own models
import pytest
from onnx import TensorProto, helper

from sentiric_media.analysis.emotion_model import EmotionModel

# Opset 17 keeps ReduceMean's axes an attribute; IR 8 is what opset 17 shipped with, and any
# onnxruntime from 1.14 on (the project needs 1.18) runs both.
OPSET, IR_VERSION = 17, 8
LABELS = ("calm", "neutral", "angry")
# logits = mean|x| · W + B: quiet → calm, moderate → neutral, loud → angry.
WEIGHTS = np.array([[-40.0, 0.0, 40.0]], dtype=np.float32)
BIAS = np.array([[2.0, 0.0, -6.0]], dtype=np.float32)


def build_model(path: Path, softmax: bool = True, samples: int | str = "samples") -> Path:
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, samples])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, len(BIAS[0])])
    nodes = [
        helper.make_node("Abs", ["audio"], ["magnitude"]),
        helper.make_node("ReduceMean", ["magnitude"], ["level"], axes=[1], keepdims=1),
        helper.make_node("MatMul", ["level", "weights"], ["product"]),
        helper.make_node("Add", ["product", "bias"], ["logits" if softmax else "scores"]),
    ]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=-1))
    initializers = [
        helper.make_tensor("weights", TensorProto.FLOAT, WEIGHTS.shape, WEIGHTS.ravel()),
        helper.make_tensor("bias", TensorProto.FLOAT, BIAS.shape, BIAS.ravel()),
    ]
    graph = helper.make_graph(nodes, "loudness", [audio], [scores], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_labels(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    path = build_model(tmp_path / "tiny.onnx")
    write_labels(path.with_suffix(".labels"), ["# the classes, in output order", *LABELS])
    return path


def speech_like(rate: int, level: float, seconds: float = 1.0) -> np.ndarray:
    """A 150 Hz buzz whose mean |x| is about `level` (int16)."""
    t = np.arange(int(rate * seconds)) / rate
    buzz = np.sign(np.sin(2 * np.pi * 150 * t)) * 0.5 + 0.5 * np.sin(2 * np.pi * 450 * t)
    buzz *= level / np.mean(np.abs(buzz))
    return np.rint(np.clip(buzz, -1, 1) * 32767).astype(np.int16)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_classes_follow_the_input(model_path: Path, rate: int) -> None:
    model = EmotionModel(str(model_path))
    assert model.labels == LABELS
    quiet = model.estimate(speech_like(rate, 0.01), rate)
    moderate = model.estimate(speech_like(rate, 0.1), rate)
    loud = model.estimate(speech_like(rate, 0.3), rate)
    assert (quiet.label, moderate.label, loud.label) == LABELS
    for result in (quiet, moderate, loud):
        assert 1 / 3 < result.confidence <= 1.0
    assert loud.arousal > moderate.arousal > quiet.arousal
    # Default coordinates: calm (0.2, +0.3), neutral (0.5, 0), angry (0.85, -0.7).
    assert quiet.valence > 0 > loud.valence
    assert loud.arousal == pytest.approx(0.85, abs=0.05)
    # The model's own probabilities: softmax(level·W + B) at the level it measured.
    level = np.mean(np.abs(speech_like(16000, 0.3).astype(np.float32) / 32768))
    logits = level * WEIGHTS[0] + BIAS[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert loud.confidence == pytest.approx(expected.max(), abs=0.02)


def test_logits_get_a_softmax(tmp_path: Path) -> None:
    path = build_model(tmp_path / "logits.onnx", softmax=False)
    write_labels(path.with_suffix(".labels"), list(LABELS))
    result = EmotionModel(str(path)).estimate(speech_like(16000, 0.3), 16000)
    assert result.label == "angry"
    assert 0.9 < result.confidence < 1.0  # a probability, not the raw logit (~6)


def test_coordinates_from_the_labels_file(tmp_path: Path) -> None:
    path = build_model(tmp_path / "custom.onnx")
    labels = write_labels(
        tmp_path / "elsewhere.txt", ["relaxed 0.1 0.5", "flat", "irate 0.95 -0.9"]
    )
    model = EmotionModel(str(path), str(labels))
    assert model.labels == ("relaxed", "flat", "irate")
    loud = model.estimate(speech_like(16000, 0.3), 16000)
    assert loud.label == "irate"
    assert loud.arousal == pytest.approx(0.95, abs=0.05)
    assert loud.valence == pytest.approx(-0.9, abs=0.05)
    moderate = model.estimate(speech_like(16000, 0.1), 16000)
    assert moderate.label == "flat"  # an unknown name without coordinates: (0.5, 0)


def test_fixed_length_models_get_padded_or_cut(tmp_path: Path) -> None:
    path = build_model(tmp_path / "fixed.onnx", samples=16000)
    write_labels(path.with_suffix(".labels"), list(LABELS))
    model = EmotionModel(str(path))
    assert model.estimate(speech_like(16000, 0.3, seconds=2.5), 16000).label == "angry"
    assert model.estimate(speech_like(8000, 0.01, seconds=0.3), 8000).label == "calm"


def test_missing_model_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.onnx"
    with pytest.raises(ValueError, match=re.escape(str(path))):
        EmotionModel(str(path))


def test_missing_labels_file(tmp_path: Path) -> None:
    path = build_model(tmp_path / "unlabelled.onnx")
    with pytest.raises(ValueError, match=re.escape(str(path.with_suffix(".labels")))):
        EmotionModel(str(path))


def test_labels_count_mismatch(tmp_path: Path) -> None:
    path = build_model(tmp_path / "tiny.onnx")
    write_labels(path.with_suffix(".labels"), [*LABELS, "sad"])
    with pytest.raises(ValueError, match=re.escape(str(path)) + r".*3 outputs but 4 labels"):
        EmotionModel(str(path))


def test_bad_labels_line(tmp_path: Path) -> None:
    path = build_model(tmp_path / "tiny.onnx")
    labels = write_labels(path.with_suffix(".labels"), ["calm 0.2", "neutral", "angry"])
    with pytest.raises(ValueError, match=re.escape(str(labels)) + ", line 1"):
        EmotionModel(str(path))


def test_garbage_model_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 20)
    write_labels(path.with_suffix(".labels"), list(LABELS))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        EmotionModel(str(path))
