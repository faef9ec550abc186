"""Emotion from the caller's tone over real UDP and gRPC, in the real analysis worker:
a subscriber gets `emotion` events for the caller's speech (the prosody rule by default,
an ONNX model by a setting); the call's mean arousal is in its last log line and in the
`sentiric_media_call_arousal` histogram; `MEDIA_SERVICE_EMOTION=false` sends none."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import (
    allocate,
    drain,
    http_get,
    metric,
    parse_metrics,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
)
from tests.unit.test_emotion_model import LABELS, build_model, write_labels

RATE = 8000


async def _talk(service, stub, peer, call_id: str) -> list[pb.MediaEvent]:
    """Six seconds of the bundled speech into a subscribed call; its events."""
    port = await allocate(stub, call_id)
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    audio = np.concatenate([speech()[: RATE * 6], np.zeros(RATE, np.int16)])
    await send_paced(peer, port, rtp_packets(audio))
    worker = service.manager.analysis.worker
    assert await wait_until(lambda: worker.counters.emotions >= 2, 10.0), worker.counters
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    return await drain(call, 5.0)


async def test_the_callers_speech_gets_emotion_estimates(service, stub, peer, caplog):
    caplog.set_level(logging.INFO, logger="sentiric_media")
    events = await _talk(service, stub, peer, "emotion-prosody")
    kinds = [e.WhichOneof("event") for e in events]
    estimates = [e.emotion for e in events if e.WhichOneof("event") == "emotion"]
    assert len(estimates) >= 2, kinds
    first_speech = next(
        e.media_time_ms for e in events if e.WhichOneof("event") == "speech_started"
    )
    emotion_times = [e.media_time_ms for e in events if e.WhichOneof("event") == "emotion"]
    assert min(emotion_times) >= first_speech - 200  # stamped where its piece of speech began
    for estimate in estimates:
        assert estimate.label in {"calm", "neutral", "agitated"}
        assert 0.0 <= estimate.arousal <= 1.0
        assert 0.0 <= estimate.confidence <= 1.0
    ended = [r.getMessage() for r in caplog.records if "session ended" in r.getMessage()]
    assert any("arousal 0." in line or "arousal 1." in line for line in ended), ended
    status, text = await http_get(service.metrics_port, "/metrics")
    assert status == 200
    count = metric(parse_metrics(text), "sentiric_media_call_arousal_count")
    assert count >= 1


async def test_an_onnx_model_replaces_the_rule(make_service, peer, tmp_path):
    model = build_model(tmp_path / "tiny.onnx")
    write_labels(model.with_suffix(".labels"), list(LABELS))
    service, stub = await make_service(emotion_model=str(model))
    events = await _talk(service, stub, peer, "emotion-onnx")
    labels = {e.emotion.label for e in events if e.WhichOneof("event") == "emotion"}
    assert labels
    assert labels <= set(LABELS)


async def test_a_broken_model_fails_at_start_up(make_service, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    write_labels(broken.with_suffix(".labels"), list(LABELS))
    with pytest.raises(ValueError, match=r"broken\.onnx"):
        await make_service(emotion_model=str(broken))


async def test_no_emotion_when_switched_off(make_service, peer):
    service, stub = await make_service(emotion=False, keyword_spotting=False)
    assert service.manager.analysis.worker is None
    port = await allocate(stub, "emotion-off")
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    await send_paced(peer, port, rtp_packets(speech()[: RATE * 3]))
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    kinds = [e.WhichOneof("event") for e in await drain(call, 5.0)]
    assert "speech_started" in kinds
    assert "emotion" not in kinds
