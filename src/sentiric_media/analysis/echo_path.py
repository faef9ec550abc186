"""The echo of our own prompt in the caller's audio: its delay, its gain, its level now.

A phone, a hybrid or a speakerphone may return what we send, 20–300 ms
later and 6–20 dB down; voice activity hears that as speech. `EchoPath`
keeps the last second of what we sent and of what we heard, both by clock
position, and every `EVERY_MS` (while we send) cross-correlates the last
`WINDOW_MS` heard against what was sent up to `MAX_DELAY_MS` before (one
FFT product). A peak of normalised correlation of at least `COHERENCE` is an
echo path: its lag is the delay and the least-squares fit its gain. Then
`echo_energy` says how much energy of a stretch of caller audio the echo
explains, and `caller_present` asks the caller's audio to be `MARGIN_DB`
louder than the echo of what we sent at that delay (±10 ms) and gain, and
above `FLOOR_DBFS`. A caller as loud as our echo is not told from it (the
echo of a prompt is 6–20 dB below the prompt; a caller talks at about the
prompt's level).

Until a path is known the echo is assumed at its worst (`WORST_ECHO_DB` below
the loudest of what we sent within `MAX_DELAY_MS`), so the first words of a
prompt coming back cannot barge in before the first estimate; after
`NO_ECHO_AFTER` estimates that find none (no echo, or the caller talking
over it) nothing is assumed. A path found is kept for `HOLD_MS` without a
new one, then forgotten.
"""

from __future__ import annotations

import numpy as np

HISTORY_MS = 1000
WINDOW_MS = 400
MAX_DELAY_MS = 400
EVERY_MS = 200
COHERENCE = 0.5
HOLD_MS = 3000
MARGIN_DB = 4.0
WORST_ECHO_DB = -6.0
NO_ECHO_AFTER = 2
FLOOR_DBFS = -50.0  # RMS of what is left: below it the caller is not talking


class _Ring:
    """The last `size` samples of a signal, by clock position (gaps read as zeros)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data = np.zeros(size, dtype=np.float32)
        self.end = 0  # one past the newest position written

    def write(self, position: int, pcm: np.ndarray) -> None:
        oldest = max(self.end, position + len(pcm)) - self.size
        if position < oldest:  # the part older than the ring would wrap onto the newest
            pcm = pcm[oldest - position :]
            position = oldest
        if not len(pcm):
            return
        if position >= self.end + self.size:
            self._data[:] = 0.0
        elif position > self.end:
            self._clear(self.end, position)
        index = np.arange(position, position + len(pcm)) % self.size
        self._data[index] = pcm
        self.end = max(self.end, position + len(pcm))

    def read(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start + count); what is older than the ring or not written is 0."""
        out = np.zeros(count, dtype=np.float32)
        first = max(start, self.end - self.size)
        last = min(start + count, self.end)
        if last > first:
            out[first - start : last - start] = self._data[np.arange(first, last) % self.size]
        return out

    def _clear(self, start: int, end: int) -> None:
        count = min(end - start, self.size)
        self._data[np.arange(end - count, end) % self.size] = 0.0


class EchoPath:
    """The echo path estimate of one session."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        size = rate * HISTORY_MS // 1000
        self._sent = _Ring(size)
        self._heard = _Ring(size)
        self._window = rate * WINDOW_MS // 1000
        self._max_delay = rate * MAX_DELAY_MS // 1000
        self._every = rate * EVERY_MS // 1000
        self._hold = rate * HOLD_MS // 1000
        self._next_estimate = 0
        self.delay: int | None = None  # samples
        self.gain = 0.0
        self.coherence = 0.0
        self._found_at = 0
        self._misses = 0  # estimates in a row that found no path
        self._first_sent: int | None = None  # where our current stretch of audio began

    def sent(self, position: int, pcm: np.ndarray) -> None:
        if self._first_sent is None or position > self._sent.end + self._every:
            self._first_sent = position  # a new stretch of our audio
        self._sent.write(position, pcm.astype(np.float32))

    def heard(self, position: int, pcm: np.ndarray) -> None:
        self._heard.write(position, pcm.astype(np.float32))
        end = position + len(pcm)
        if end >= self._next_estimate:
            self._next_estimate = end + self._every
            self._estimate(end)

    def echo_energy(self, position: int, count: int) -> float:
        """Energy our echo may bring to caller audio [position, position + count).

        Energies, not waveforms: a delay a few samples off (placement settling,
        jitter) would leave a waveform residual as loud as the echo, so this is
        the loudest of the stretches at the delay and ±10 ms.
        """
        if self.delay is None:
            return 0.0
        shift = self.rate // 100
        sent = self._sent.read(position - self.delay - shift, count + 2 * shift)
        parts = (sent[:count], sent[shift:-shift], sent[-count:])
        return max(float(np.dot(part, part)) for part in parts) * self.gain**2

    def describe(self) -> str:
        if self.delay is None:
            return "assumed at its worst" if self.assumed_worst else "none found"
        gain_db = 20 * np.log10(max(abs(self.gain), 1e-9))
        delay_ms = self.delay * 1000 // self.rate
        return f"{delay_ms} ms, {gain_db:.1f} dB, coherence {self.coherence:.2f}"

    @property
    def assumed_worst(self) -> bool:
        """No path known yet, and not enough estimates to say there is none."""
        return self.delay is None and self._misses < NO_ECHO_AFTER

    def caller_present(self, position: int, pcm: np.ndarray) -> bool:
        """Caller audio at `position` holds more than our echo: someone talks."""
        samples = pcm.astype(np.float32)
        count = len(samples)
        energy = float(np.dot(samples, samples))
        if energy < count * (32768 * 10 ** (FLOOR_DBFS / 20)) ** 2:
            return False
        if self.delay is None:
            if not self.assumed_worst:
                return True
            recent = self._sent.read(position - self._max_delay, self._max_delay + count)
            frames = recent[: len(recent) // count * count].reshape(-1, count)
            loudest = float(np.max(np.einsum("ij,ij->i", frames, frames))) if len(frames) else 0
            return energy >= loudest * 10 ** (WORST_ECHO_DB / 10)
        return energy >= self.echo_energy(position, count) * 10 ** (MARGIN_DB / 10)

    def _estimate(self, end: int) -> None:
        if self.delay is not None and end - self._found_at > self._hold:
            self.delay, self.gain, self.coherence, self._misses = None, 0.0, 0.0, 0
        window, max_delay = self._window, self._max_delay
        if self._first_sent is None or end - window < self._first_sent:
            return  # the window reaches back before our audio began
        heard = self._heard.read(end - window, window)
        sent = self._sent.read(end - window - max_delay, window + max_delay)
        sent_energy = float(np.dot(sent, sent))
        heard_energy = float(np.dot(heard, heard))
        if sent_energy <= 1e-3:
            return  # we sent nothing: nothing to find
        if heard_energy <= 1e-3:
            self._misses += 1  # we sent, and nothing came back at all
            return
        size = 1 << int(np.ceil(np.log2(len(sent) + window)))
        # correlation[lag] = sum heard[n] * sent[n + max_delay - lag], lag = 0 .. max_delay
        spectrum = np.fft.rfft(sent, size) * np.conj(np.fft.rfft(heard, size))
        full = np.fft.irfft(spectrum, size)[: max_delay + 1][::-1]
        # Energy of each lagged stretch of `sent` (a running sum), for normalising.
        cumulative = np.concatenate([[0.0], np.cumsum(sent.astype(np.float64) ** 2)])
        starts = max_delay - np.arange(max_delay + 1)
        lagged = cumulative[starts + window] - cumulative[starts]
        normalised = full / np.sqrt(np.maximum(lagged, 1e-9) * heard_energy)
        # A lag whose stretch of our audio is nearly silent explains nothing.
        normalised[lagged < 0.1 * lagged.max()] = 0.0
        lag = int(np.argmax(np.abs(normalised)))  # an inverted echo correlates negatively
        if abs(normalised[lag]) >= COHERENCE:
            self.delay = lag
            self.gain = float(full[lag] / max(lagged[lag], 1e-9))  # signed
            self.coherence = float(abs(normalised[lag]))
            self._found_at = end
            self._misses = 0
        else:
            self._misses += 1  # a whole window heard while we sent, and no echo in it
