"""Loading the native codec libraries (Debian packages) through ctypes, never fatally.

Opus decoding (libopus0) and G.729 (libbcg729-0) call C libraries that the
Python wheels do not bring. A missing library or symbol must not stop the
service from starting: `load_library` returns the reason instead, and the
codec module reports itself unavailable with it (see `codecs.UNAVAILABLE`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Mapping, Sequence
from typing import Any

# A C function's ctypes result type and argument types.
Signature = tuple[Any, Sequence[Any]]


def load_library(
    soname: str, name: str, package: str, functions: Mapping[str, Signature]
) -> tuple[ctypes.CDLL | None, str | None]:
    """`(library, None)` with `functions` typed, or `(None, why)` naming the Debian package.

    The exact soname comes first (the ABI the signatures were written for);
    `ctypes.util.find_library(name)` is the fallback for other layouts.
    """
    candidates = [soname]
    found = ctypes.util.find_library(name)
    if found and found != soname:
        candidates.append(found)
    for candidate in candidates:
        try:
            library = ctypes.CDLL(candidate)
        except OSError:
            continue
        for function_name, (restype, argtypes) in functions.items():
            function = getattr(library, function_name, None)
            if function is None:
                return None, (
                    f"{candidate} has no {function_name} (too old?): apt-get install {package}"
                )
            function.restype = restype
            function.argtypes = list(argtypes)
        return library, None
    return None, f"{soname} not found: apt-get install {package}"


def optional_function(library: ctypes.CDLL, name: str, signature: Signature) -> Any | None:
    """A function only newer versions of `library` have, typed, or None."""
    function = getattr(library, name, None)
    if function is not None:
        function.restype, function.argtypes = signature[0], list(signature[1])
    return function
