"""Summarise a py-spy profile in collapsed-stack form (`py-spy record --format raw`).

    .venv/bin/python -m bench.profile /tmp/profile.txt [--top 25]

Each line of the file is `frame;frame;...;frame count`, outermost first. The
summary lists functions by self time (samples where the function is the
innermost frame) and by inclusive time (samples where it is anywhere on the
stack, counted once per sample), aggregated over line numbers. Samples of a
thread waiting (epoll, a lock, a queue: what `py-spy --native` records, since it
cannot use py-spy's idle detection) are left out unless `--idle` is given.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
_WAITING = re.compile(
    r"^(epoll_wait|epoll_pwait|poll|select|nanosleep|clock_nanosleep|futex)\b"
    r"|PyThread_acquire_lock_timed|_queue_SimpleQueue_get|Condition\.wait"
)


def function_of(frame: str) -> str:
    """`f (pkg/mod.py:180)` → `f (pkg/mod.py)`: aggregate a function over its lines."""
    frame = _LINE.sub(")", frame.strip())
    return re.sub(r"\(/.*?/(site-packages|src)/", "(", frame)


def waiting(frames: list[str]) -> bool:
    """Whether a sample is a thread blocked in a wait (not using the CPU)."""
    return any(_WAITING.search(frame) for frame in frames[-6:])


def summarise(path: Path, idle: bool = False) -> tuple[int, Counter[str], Counter[str]]:
    total, own, inclusive = 0, Counter[str](), Counter[str]()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [function_of(f) for f in stack.split(";") if f]
        if not idle and waiting(frames):
            continue
        total += count
        if frames:
            own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return total, own, inclusive


def render(path: Path, top: int, idle: bool = False) -> str:
    total, own, inclusive = summarise(path, idle)
    if not total:
        return f"{path}: no samples"
    lines = [f"{total} samples in {path}", "", "self time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive time:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--idle", action="store_true", help="keep samples of waiting threads")
    args = parser.parse_args(argv)
    print(render(args.file, args.top, args.idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
