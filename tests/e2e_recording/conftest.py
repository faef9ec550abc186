"""Fixtures of the recording timing tests: tools, test speech, the service as a subprocess."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.e2e_recording.service import ServiceProcess, start_service
from tests.e2e_recording.speech import Speech, make_speech

TOOLS = {"ffmpeg": "ffmpeg", "espeak-ng": "espeak-ng"}


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is not None:
        return
    reason = f"{tool} is not installed (apt-get install -y {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the end-to-end recording tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_tools() -> None:
    for tool, package in TOOLS.items():
        _require(tool, package)


@pytest.fixture(scope="session")
def speech(e2e_tools: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Speech]:
    """The scenario's sources; the bot's prompts also live under the service's assets."""
    return make_speech(tmp_path_factory.mktemp("e2e-recording-assets") / "prompts")


@pytest.fixture(scope="module")
def media_service(
    speech: dict[str, Speech], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The service as a subprocess (its own clock, undisturbed by the test's threads)."""
    assets = next(iter(speech.values())).path.parents[1]
    try:
        service = start_service(tmp_path_factory.mktemp("e2e-recording-service"), assets)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield service
    finally:
        service.stop()
