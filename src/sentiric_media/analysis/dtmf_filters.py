"""The DTMF filter bank and the window checks, vectorized over any number of windows.

`Filters.analyse` takes 10 ms blocks to their DFT at the eight ITU-T Q.23
frequencies (one matrix product) plus their energy; `Filters.keys` checks each
window of two consecutive blocks against the limits `dtmf_detect` documents
(level, twist, purity, frequency, steadiness): the cheap checks on every
window, the rest only on the windows left.
"""

from __future__ import annotations

import numpy as np

from sentiric_media.audio.dtmf import COLUMN_HZ, KEYPAD, ROW_HZ, amplitude

BLOCK_MS = 10
MIN_LEVEL_DBM0 = -30.0  # Q.24 operates down to -25 dBm0 per tone
HIGH_LOUDER_DB = 8.0
LOW_LOUDER_DB = 4.0
GROUP_MARGIN_DB = 8.0
TONE_SHARE = 0.75
FREQUENCY_TOLERANCE = 0.025  # Q.24: operate within 1.5 %, reject beyond 3.5 %
STEADY_DB = 1.0

KEYS = "".join(KEYPAD)  # key index = row * 4 + column
NO_KEY = -1
ROW = 17  # a block's filter-bank row: 8 real parts, 8 imaginary parts, energy
_FREQUENCIES = np.array(ROW_HZ + COLUMN_HZ)
_MIN_AMPLITUDE = amplitude(MIN_LEVEL_DBM0)


class Filters:
    """The filter bank and the window checks at one sample rate, vectorized over windows."""

    def __init__(self, rate: int) -> None:
        n = rate * BLOCK_MS // 1000
        self.n = n
        omega = 2 * np.pi * _FREQUENCIES / rate
        phase = np.outer(np.arange(n), omega)
        # [cos | -sin]: one product gives each block's DFT at the eight frequencies.
        self._bank = np.hstack([np.cos(phase), -np.sin(phase)]).astype(np.float32)
        shift = np.exp(-1j * omega * n)  # a block's phase origin moved back one block
        self._shift_re = shift.real.astype(np.float32)
        self._shift_im = shift.imag.astype(np.float32)
        self._tolerance = FREQUENCY_TOLERANCE * omega

    def analyse(self, blocks: np.ndarray) -> np.ndarray:
        """One row per block: 8 real parts, 8 imaginary parts, energy."""
        samples = blocks.astype(np.float32)
        rows = np.empty((len(blocks), ROW), dtype=np.float32)
        np.matmul(samples, self._bank, out=rows[:, :16])
        rows[:, 16] = np.einsum("ij,ij->i", samples, samples)
        return rows

    def keys(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The key index each window (`first` block, `second` block) holds, or NO_KEY.

        The cheap checks run on every window, the rest only on the windows left.
        """
        n = self.n
        result = np.full(len(first), NO_KEY)
        e1, e2 = first[:, 16], second[:, 16]
        steady = 10 ** (STEADY_DB / 10)
        # At least one tone at the minimum level, and the same energy in both blocks.
        ok = (e1 + e2 >= _MIN_AMPLITUDE**2 * n) & (e1 <= steady * e2) & (e2 <= steady * e1)
        index = np.flatnonzero(ok)
        if not len(index):
            return result
        first, second = first[index], second[index]
        # The window's DFT: the first block's plus the second's, moved to the same origin.
        ar, ai = first[:, :8], first[:, 8:16]
        br = second[:, :8] * self._shift_re - second[:, 8:16] * self._shift_im
        bi = second[:, :8] * self._shift_im + second[:, 8:16] * self._shift_re
        power = (ar + br) ** 2 + (ai + bi) ** 2
        row = np.argmax(power[:, :4], axis=1)
        column = 4 + np.argmax(power[:, 4:], axis=1)
        k = np.arange(len(index))
        peak_row, peak_column = power[k, row], power[k, column]
        power[k, row] = power[k, column] = 0.0
        margin = 10 ** (GROUP_MARGIN_DB / 10)
        ok = (peak_row >= margin * power[:, :4].max(axis=1)) & (
            peak_column >= margin * power[:, 4:].max(axis=1)
        )
        # Loose first: a tone 2.5 % off its bin keeps well over a fifth of its energy.
        energy = e1[index] + e2[index]
        ok &= (peak_row + peak_column) / n >= 0.2 * energy
        keep = np.flatnonzero(ok)
        if not len(keep):
            return result
        a = ar[keep] + 1j * ai[keep]
        b = br[keep] + 1j * bi[keep]
        energy = energy[keep]
        row, column, k = row[keep], column[keep], k[: len(keep)]
        peaks = peak_row[keep], peak_column[keep]
        levels = []
        for tone, peak in zip((row, column), peaks, strict=True):
            # The phase advance over one block gives the tone's offset from nominal ...
            offset = np.angle(b[k, tone] * np.conj(a[k, tone])) / n  # radians per sample
            ok = np.abs(offset) <= self._tolerance[tone]
            # ... and the window's response at that offset its true amplitude.
            levels.append(np.where(ok, np.sqrt(peak) / (n * _dirichlet(offset, 2 * n)), 0.0))
        low, high = levels
        ok = (low >= _MIN_AMPLITUDE) & (high >= _MIN_AMPLITUDE)
        twist = 20 * np.log10((high + 1e-9) / (low + 1e-9))
        ok &= (twist <= HIGH_LOUDER_DB) & (-twist <= LOW_LOUDER_DB)
        ok &= (low**2 + high**2) * n >= TONE_SHARE * energy  # a tone's energy: a²/2 · 2n
        found = index[keep[ok]]
        result[found] = (row * 4 + column - 4)[ok]
        return result


def _dirichlet(offset: np.ndarray, length: int) -> np.ndarray:
    """|DFT response| of a `length`-sample rectangular window `offset` rad/sample off its bin."""
    half = offset / 2
    safe = np.where(np.abs(half) < 1e-9, 1e-9, half)
    return np.abs(np.sin(safe * length) / (length * np.sin(safe)))
