"""The service under test as a subprocess, and the readers of /proc and /metrics.

`ServiceProcess` starts `sentiric-media serve` pinned to one CPU on free
loopback ports, with an assets folder holding one long prompt, logs to a file,
and stops it with SIGTERM. The other functions read what the kernel and the
service report: CPU time and RSS of a process, per-CPU busy time, system UDP
counters and the Prometheus text of `/metrics`.
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.codecs import bundled_speech

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROMPT_NAME = "bench/long_prompt.wav"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_prompt(assets: Path, seconds: float) -> str:
    """Write the bundled speech, looped to `seconds`, as an 8 kHz WAV; return its URI."""
    rate, pcm = bundled_speech()
    target = assets / PROMPT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    samples = int(seconds * rate)
    looped = np.tile(pcm, samples // len(pcm) + 1)[:samples]
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(looped.astype("<i2").tobytes())
    return f"file://{PROMPT_NAME}"


def _service_command() -> list[str]:
    script = Path(sys.executable).parent / "sentiric-media"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "sentiric_media.cli", "serve"]


@dataclass
class ServiceProcess:
    """One `sentiric-media serve` on free loopback ports, pinned to `cpu`."""

    workdir: Path
    calls: int
    cpu: int | None = 0
    rtp_base: int = 24000
    log_level: str = "WARNING"
    live_buffer: int | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        self.log_path = self.workdir / "service.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        port_max = self.rtp_base + 2 * self.calls + 200  # room for ports that fail to bind
        env.update(
            {
                "MEDIA_SERVICE_GRPC_PORT": str(self.grpc_port),
                "MEDIA_SERVICE_METRICS_PORT": str(self.metrics_port),
                "MEDIA_SERVICE_LISTEN_ADDRESS": "127.0.0.1",
                "RTP_SERVICE_LISTEN_ADDRESS": "127.0.0.1",
                "RTP_SERVICE_PORT_MIN": str(self.rtp_base),
                "RTP_SERVICE_PORT_MAX": str(min(port_max, 65534)),
                "RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS": "600",
                "ASSETS_BASE_PATH": str(self.workdir / "assets"),
                "MEDIA_SERVICE_RECORDINGS_PATH": str(self.workdir / "recordings"),
                "LOG_LEVEL": self.log_level,
                "ENV": "development",
                "ENV_FILE": str(self.workdir / "no.env"),
            }
        )
        if self.live_buffer is not None:
            env["LIVE_AUDIO_STREAM_BUFFER"] = str(self.live_buffer)
        for name in ("RABBITMQ_URL", "BUCKET_ENDPOINT_URL", "BUCKET_NAME"):
            env.pop(name, None)
        return env

    def start(self, timeout: float = 30.0) -> None:
        cpu = self.cpu

        def prepare() -> None:  # runs in the child between fork and exec
            if cpu is not None and cpu < (os.cpu_count() or 1):
                os.sched_setaffinity(0, {cpu})
            _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            _service_command(),
            env=self.environment(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=prepare,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"service exited with {self.process.returncode}: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=1
                ) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"service not ready after {timeout:.0f} s")

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code (None if it had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def scrape(self) -> dict[str, float]:
        return scrape_metrics(self.metrics_port)


def scrape_metrics(port: int) -> dict[str, float]:
    """`/metrics` as {"name{labels}": value} (comments dropped)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and of its living children (the service's workers)."""
    return sum(process_cpu_seconds(p) for p in (pid, *_children(pid)))


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # it ended between the listing and the reading
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's main thread was runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def process_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB."""
    result = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            result[name] = int(value.split()[0])
    return result


def cpu_idle_seconds() -> dict[str, float]:
    """Idle (+ iowait) time of each CPU from /proc/stat, in seconds.

    Only idle time is used: a tickless kernel measures it exactly, while busy
    time is sampled by the tick and misses short bursts (here, a service waking
    500 times a second showed a third of its CPU time). Busy = elapsed − idle.
    """
    result = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *numbers = line.split()
            result[name] = (int(numbers[3]) + int(numbers[4])) / CLOCK_TICKS
    return result


def udp_counters() -> dict[str, int]:
    """System-wide UDP counters (/proc/net/snmp): kernel drops show up in RcvbufErrors."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    for names, values in itertools.pairwise(lines):
        if names[0] == "Udp:" and values[0] == "Udp:" and not values[1].isalpha():
            return dict(zip(names[1:], (int(v) for v in values[1:]), strict=True))
    return {}


def scan_log(path: Path, limit: int = 8) -> dict[str, object]:
    """Count tracebacks and log lines by level; keep the first few distinct messages."""
    text = path.read_text(errors="replace") if path.exists() else ""
    levels: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for line in text.splitlines():
        match = re.search(r"\b(CRITICAL|ERROR|WARNING)\b", line)
        if match:
            levels[match.group(1)] += 1
            shape = re.sub(r"\d+", "N", line.split(match.group(1), 1)[1])[:120]
            if shape not in samples and len(samples) < limit:
                samples[shape] = line[:300]
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "levels": dict(levels),
        "first_lines": list(samples.values()),
    }
