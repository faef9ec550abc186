"""A speech-emotion classifier in ONNX, as an alternative to the prosody rule.

`EmotionModel` owns one onnxruntime session (single-threaded, like the VAD's)
and the model's class list. The model takes 16 kHz float32 audio in -1..1,
shaped [1, samples] (a dynamic sample axis, or a fixed one that pieces are
padded or cut to), and returns class scores [1, classes]: probabilities, or
logits that are put through a softmax here.

The classes come from a side file, by default the model's path with the suffix
`.labels`: one class a line, optionally followed by its arousal (0..1) and
valence (-1..1). Classes without coordinates that carry a known name (angry,
happy, sad, neutral, calm, fear, disgust, surprise and their usual variants)
get default ones, placed roughly as on Russell's circumplex of affect, so that
arousal and valence are the probability-weighted average of the classes'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soxr

from sentiric_media.analysis.prosody import Emotion

MODEL_RATE = 16000
MIN_SAMPLES = MODEL_RATE // 10  # shorter pieces are zero-padded: convolution stacks need some
# (arousal 0..1, valence -1..1) of the usual emotion-corpus classes (IEMOCAP, RAVDESS, CREMA-D).
COORDINATES: dict[str, tuple[float, float]] = {
    "angry": (0.85, -0.7),
    "anger": (0.85, -0.7),
    "ang": (0.85, -0.7),
    "frustrated": (0.7, -0.5),
    "fru": (0.7, -0.5),
    "fear": (0.8, -0.6),
    "fearful": (0.8, -0.6),
    "fea": (0.8, -0.6),
    "disgust": (0.6, -0.7),
    "dis": (0.6, -0.7),
    "happy": (0.7, 0.8),
    "happiness": (0.7, 0.8),
    "hap": (0.7, 0.8),
    "joy": (0.7, 0.8),
    "excited": (0.85, 0.6),
    "exc": (0.85, 0.6),
    "surprise": (0.8, 0.3),
    "surprised": (0.8, 0.3),
    "sur": (0.8, 0.3),
    "neutral": (0.5, 0.0),
    "neu": (0.5, 0.0),
    "calm": (0.2, 0.3),
    "sad": (0.25, -0.6),
    "sadness": (0.25, -0.6),
    "bored": (0.15, -0.3),
    "agitated": (0.85, -0.3),
}
UNKNOWN = (0.5, 0.0)  # a class of an unknown name, given no coordinates: it moves nothing


def _read_labels(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names and their (arousal, valence) rows, from a .labels file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"emotion labels {path}: cannot read ({error})") from error
    names: list[str] = []
    coordinates: list[tuple[float, float]] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) == 1:
            names.append(fields[0])
            coordinates.append(COORDINATES.get(fields[0].lower(), UNKNOWN))
            continue
        try:
            if len(fields) != 3:
                raise ValueError("expected 'label' or 'label arousal valence'")
            arousal, valence = float(fields[1]), float(fields[2])
            if not (0.0 <= arousal <= 1.0 and -1.0 <= valence <= 1.0):
                raise ValueError("arousal must be in 0..1 and valence in -1..1")
        except ValueError as error:
            raise ValueError(f"emotion labels {path}, line {number}: {error}") from error
        names.append(fields[0])
        coordinates.append((arousal, valence))
    if not names:
        raise ValueError(f"emotion labels {path}: no labels")
    if len(set(names)) != len(names):
        raise ValueError(f"emotion labels {path}: a label is listed twice")
    return tuple(names), np.array(coordinates, dtype=np.float64)


class EmotionModel:
    """A speech-emotion classifier in ONNX.

    Input 16 kHz float32 audio [1, samples]; output class scores [1, classes].
    """

    def __init__(self, path: str, labels_path: str | None = None) -> None:
        model = Path(path)
        if not model.is_file():
            raise ValueError(f"emotion model {model}: no such file")
        self.labels, self._coordinates = _read_labels(
            Path(labels_path) if labels_path is not None else model.with_suffix(".labels")
        )
        import onnxruntime  # late: the prosody rule must not need it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # hundreds of calls share a core: no thread pools
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own types for bad files
            raise ValueError(f"emotion model {model}: cannot load ({error})") from error
        first = self._session.get_inputs()[0]
        if first.type != "tensor(float)":
            raise ValueError(
                f"emotion model {model}: input {first.name} is {first.type}, not float"
            )
        self._input = first.name
        self._rank = len(first.shape)
        last = first.shape[-1] if first.shape else None
        self._fixed = last if isinstance(last, int) and last > 0 else None
        # One silent run: checks at load time, not on the first call, that the model accepts
        # [1, samples] and that its output has one score per label.
        try:
            scores = self._scores(np.zeros(self._fixed or MODEL_RATE, dtype=np.float32))
        except Exception as error:
            raise ValueError(
                f"emotion model {model}: cannot run on [1, samples] ({error})"
            ) from error
        if scores.size != len(self.labels):
            raise ValueError(
                f"emotion model {model}: {scores.size} outputs but {len(self.labels)} labels"
            )
        self.path = str(model)

    def _scores(self, audio: np.ndarray) -> np.ndarray:
        if self._fixed is not None:  # a fixed-length model: centre-cut or zero-pad the piece
            start = max(0, (len(audio) - self._fixed) // 2)
            audio = np.pad(
                audio[start : start + self._fixed], (0, max(0, self._fixed - len(audio)))
            )
        elif len(audio) < MIN_SAMPLES:
            audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))
        batch = audio.reshape((1,) * (self._rank - 1) + (-1,))
        (scores, *_) = self._session.run(None, {self._input: batch})
        return np.asarray(scores, dtype=np.float64).reshape(-1)

    def estimate(self, pcm: np.ndarray, rate: int) -> Emotion:
        scale = 1 / 32768 if np.issubdtype(pcm.dtype, np.integer) else 1.0
        audio = pcm.astype(np.float32) * np.float32(scale)
        if rate != MODEL_RATE:
            audio = soxr.resample(audio, rate, MODEL_RATE)
        scores = self._scores(np.ascontiguousarray(audio, dtype=np.float32))
        # Probabilities pass through; anything else (logits) gets a softmax.
        if scores.min() >= 0.0 and abs(scores.sum() - 1.0) < 1e-3:
            probabilities = scores
        else:
            exp = np.exp(scores - scores.max())
            probabilities = exp / exp.sum()
        best = int(np.argmax(probabilities))
        arousal, valence = probabilities @ self._coordinates
        return Emotion(
            label=self.labels[best],
            arousal=float(np.clip(arousal, 0.0, 1.0)),
            valence=float(np.clip(valence, -1.0, 1.0)),
            confidence=float(probabilities[best]),
        )
