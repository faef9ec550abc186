"""How the tests start `sentiric-media serve` as a real subprocess: ports and environment."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from tests.conftest import REPO, free_rtp_range

SERVE_COMMAND = [sys.executable, "-m", "sentiric_media.cli", "serve"]


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def service_env(
    root: Path, assets: Path, grpc_port: int, metrics_port: int, **extra: str
) -> dict[str, str]:
    """The environment of a service on loopback with its own ports and folders.

    Storage and broker settings of the developer's shell are dropped, so a test
    only talks to what it configures in `extra`.
    """
    low, high = free_rtp_range()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BUCKET_", "MEDIA_SERVICE_", "RTP_", "RABBITMQ_"))
    }
    env.update(
        {
            "MEDIA_SERVICE_GRPC_PORT": str(grpc_port),
            "MEDIA_SERVICE_METRICS_PORT": str(metrics_port),
            "MEDIA_SERVICE_LISTEN_ADDRESS": "127.0.0.1",
            "RTP_SERVICE_LISTEN_ADDRESS": "127.0.0.1",
            "RTP_SERVICE_PORT_MIN": str(low),
            "RTP_SERVICE_PORT_MAX": str(high),
            "ASSETS_BASE_PATH": str(assets),
            "MEDIA_SERVICE_RECORDINGS_PATH": str(root / "recordings"),
            "ENV": "development",
            "LOG_LEVEL": "INFO",
            "ENV_FILE": str(root / "no.env"),
            "PYTHONPATH": str(REPO / "src"),
            **extra,
        }
    )
    return env
