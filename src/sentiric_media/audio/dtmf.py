"""The sixteen DTMF keys and their tones (ITU-T Q.23), shared by sending and detection.

Each key is one frequency of the low (row) group and one of the high (column)
group. Levels are in dBm0: on G.711 a 0 dBm0 sine peaks 3.17 dB below full
scale, the reference every level in this service is measured against.
"""

from __future__ import annotations

import numpy as np

KEYS = "0123456789*#ABCD"  # in RFC 4733 event-code order (0-15)
ROW_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMN_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
# Row-major keypad: KEYPAD[row][column].
KEYPAD = ("123A", "456B", "789C", "*0#D")
# Peak amplitude (int16) of a 0 dBm0 sine.
DBM0_PEAK = 32768 * 10 ** (-3.17 / 20)


def key_frequencies(key: str) -> tuple[float, float]:
    """(row, column) frequencies of `key`."""
    for row, keys in enumerate(KEYPAD):
        column = keys.find(key)
        if column >= 0:
            return ROW_HZ[row], COLUMN_HZ[column]
    raise ValueError(f"not a DTMF key: {key!r}")


def amplitude(dbm0: float) -> float:
    """Peak int16 amplitude of a sine at `dbm0`."""
    return DBM0_PEAK * 10 ** (dbm0 / 20)


def key_tone(key: str, samples: int, rate: int, dbm0: float = -10.0) -> np.ndarray:
    """`samples` of `key`'s two tones, each at `dbm0`, as int16 at `rate`."""
    row, column = key_frequencies(key)
    t = np.arange(samples) / rate
    wave = np.sin(2 * np.pi * row * t) + np.sin(2 * np.pi * column * t)
    return np.rint(amplitude(dbm0) * wave).astype(np.int16)
