"""Settings from the environment (config.py): defaults, variable names, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiric_media.config import Settings, SettingsError, load_settings

VARIABLES = [field.alias for field in Settings.model_fields.values() if field.alias is not None]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the machine or a stray .env file may leak into these tests."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.grpc_port == 13031
    assert settings.metrics_port == 13032
    assert settings.rtp_listen_address == "0.0.0.0"
    assert settings.rtp_port_min == 10000
    assert settings.rtp_port_max == 10999
    assert settings.port_quarantine_seconds == 5
    assert settings.inactivity_timeout_seconds == 30
    assert settings.assets_base_path == Path("assets")
    assert settings.live_audio_stream_buffer == 64
    assert settings.env == "development"
    assert settings.log_level == "INFO"
    assert not settings.tls_enabled
    assert not settings.s3_configured
    assert settings.rabbitmq_url is None


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("MEDIA_SERVICE_GRPC_PORT", "50051", "grpc_port", 50051),
        ("MEDIA_SERVICE_METRICS_PORT", "9100", "metrics_port", 9100),
        ("RTP_SERVICE_LISTEN_ADDRESS", "127.0.0.1", "rtp_listen_address", "127.0.0.1"),
        ("RTP_SERVICE_PORT_MIN", "20000", "rtp_port_min", 20000),
        ("RTP_SERVICE_PORT_MAX", "10100", "rtp_port_max", 10100),
        ("RTP_SERVICE_PORT_QUARANTINE_SECONDS", "2.5", "port_quarantine_seconds", 2.5),
        ("RTP_SERVICE_PORT_QUARANTINE_SECONDS", "0", "port_quarantine_seconds", 0),
        ("RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS", "120", "inactivity_timeout_seconds", 120),
        ("ASSETS_BASE_PATH", "/srv/prompts", "assets_base_path", Path("/srv/prompts")),
        ("LIVE_AUDIO_STREAM_BUFFER", "8", "live_audio_stream_buffer", 8),
        ("BUCKET_ENDPOINT_URL", "http://minio:9000", "bucket_endpoint_url", "http://minio:9000"),
        ("BUCKET_REGION", "eu-central-1", "bucket_region", "eu-central-1"),
        ("BUCKET_NAME", "calls", "bucket_name", "calls"),
        ("BUCKET_ACCESS_KEY_ID", "key", "bucket_access_key_id", "key"),
        ("BUCKET_SECRET_ACCESS_KEY", "secret", "bucket_secret_access_key", "secret"),
        (
            "RABBITMQ_URL",
            "amqp://guest:guest@localhost/",
            "rabbitmq_url",
            "amqp://guest:guest@localhost/",
        ),
        ("ENV", "production", "env", "production"),
        ("LOG_LEVEL", "DEBUG", "log_level", "DEBUG"),
    ],
)
def test_environment_variable_names_are_honoured(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    if variable == "RTP_SERVICE_PORT_MIN":
        monkeypatch.setenv("RTP_SERVICE_PORT_MAX", "30000")
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


def test_empty_variable_means_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_SERVICE_GRPC_PORT", "")
    assert load_settings().grpc_port == 13031


def test_env_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / "service.env"
    env_file.write_text("MEDIA_SERVICE_GRPC_PORT=14000\nLIVE_AUDIO_STREAM_BUFFER=3\n")
    monkeypatch.setenv("ENV_FILE", str(env_file))
    settings = load_settings()
    assert (settings.grpc_port, settings.live_audio_stream_buffer) == (14000, 3)
    # The environment wins over the file.
    monkeypatch.setenv("MEDIA_SERVICE_GRPC_PORT", "15000")
    assert load_settings().grpc_port == 15000


def test_default_env_file_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("RTP_SERVICE_PORT_QUARANTINE_SECONDS=1\n")
    assert load_settings().port_quarantine_seconds == 1


def test_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_SERVICE_GRPC_PORT", "15000")
    assert load_settings(grpc_port=0).grpc_port == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEDIA_SERVICE_GRPC_PORT", "abc"),
        ("MEDIA_SERVICE_GRPC_PORT", "70000"),
        ("MEDIA_SERVICE_METRICS_PORT", "-1"),
        ("RTP_SERVICE_PORT_MIN", "80"),
        ("RTP_SERVICE_PORT_QUARANTINE_SECONDS", "-1"),
        ("RTP_SERVICE_PORT_QUARANTINE_SECONDS", "soon"),
        ("RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS", "0"),
        ("LIVE_AUDIO_STREAM_BUFFER", "0"),
        ("LIVE_AUDIO_STREAM_BUFFER", "many"),
        ("ENV", "staging"),
        ("LOG_LEVEL", "LOUD"),
        ("MEDIA_SERVICE_INBAND_DTMF", "sometimes"),
        ("MEDIA_SERVICE_VAD_START_THRESHOLD", "1.5"),
        ("MEDIA_SERVICE_VAD_MIN_SPEECH_MS", "10"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert repr(value) in message


def test_vad_end_threshold_at_or_above_start_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_SERVICE_VAD_START_THRESHOLD", "0.4")
    monkeypatch.setenv("MEDIA_SERVICE_VAD_END_THRESHOLD", "0.4")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "MEDIA_SERVICE_VAD_END_THRESHOLD" in str(info.value)
    assert "MEDIA_SERVICE_VAD_START_THRESHOLD" in str(info.value)


def test_port_min_above_max_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTP_SERVICE_PORT_MIN", "20000")
    monkeypatch.setenv("RTP_SERVICE_PORT_MAX", "19998")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "RTP_SERVICE_PORT_MIN" in message
    assert "RTP_SERVICE_PORT_MAX" in message
    assert "20000" in message
    assert "19998" in message


def test_range_without_an_even_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTP_SERVICE_PORT_MIN", "10001")
    monkeypatch.setenv("RTP_SERVICE_PORT_MAX", "10001")
    with pytest.raises(SettingsError, match="even port"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (["MEDIA_SERVICE_CERT_PATH"], ["MEDIA_SERVICE_KEY_PATH", "GRPC_TLS_CA_PATH"]),
        (["MEDIA_SERVICE_KEY_PATH"], ["MEDIA_SERVICE_CERT_PATH", "GRPC_TLS_CA_PATH"]),
        (["GRPC_TLS_CA_PATH"], ["MEDIA_SERVICE_CERT_PATH", "MEDIA_SERVICE_KEY_PATH"]),
        (["MEDIA_SERVICE_CERT_PATH", "MEDIA_SERVICE_KEY_PATH"], ["GRPC_TLS_CA_PATH"]),
        (["MEDIA_SERVICE_CERT_PATH", "GRPC_TLS_CA_PATH"], ["MEDIA_SERVICE_KEY_PATH"]),
    ],
)
def test_partial_tls_settings_name_the_missing_ones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: list[str], missing: list[str]
) -> None:
    for name in given:
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN-----\n")
        monkeypatch.setenv(name, str(path))
    with pytest.raises(SettingsError) as info:
        load_settings()
    tail = str(info.value).split(";")[-1]  # "..., <missing> not set"
    for name in missing:
        assert name in tail
    for name in given:
        assert name not in tail


def test_complete_tls_settings_enable_tls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MEDIA_SERVICE_CERT_PATH", "MEDIA_SERVICE_KEY_PATH", "GRPC_TLS_CA_PATH"):
        path = tmp_path / f"{name}.pem"
        path.write_text("-----BEGIN-----\n")
        monkeypatch.setenv(name, str(path))
    settings = load_settings()
    assert settings.tls_enabled
    assert settings.cert_path == tmp_path / "MEDIA_SERVICE_CERT_PATH.pem"


def test_tls_file_that_does_not_exist_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("MEDIA_SERVICE_CERT_PATH", "MEDIA_SERVICE_KEY_PATH"):
        path = tmp_path / f"{name}.pem"
        path.write_text("x")
        monkeypatch.setenv(name, str(path))
    monkeypatch.setenv("GRPC_TLS_CA_PATH", str(tmp_path / "nowhere.pem"))
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "GRPC_TLS_CA_PATH" in str(info.value)
    assert "nowhere.pem" in str(info.value)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (10000, 10010, [10000, 10002, 10004, 10006, 10008, 10010]),
        (10001, 10010, [10002, 10004, 10006, 10008, 10010]),
        (10000, 10009, [10000, 10002, 10004, 10006, 10008]),
        (10001, 10002, [10002]),
        (20000, 20000, [20000]),
    ],
)
def test_even_ports(
    monkeypatch: pytest.MonkeyPatch, low: int, high: int, expected: list[int]
) -> None:
    monkeypatch.setenv("RTP_SERVICE_PORT_MIN", str(low))
    monkeypatch.setenv("RTP_SERVICE_PORT_MAX", str(high))
    assert list(load_settings().even_ports()) == expected


def test_default_pool_has_500_even_ports() -> None:
    ports = load_settings().even_ports()
    assert len(ports) == 500
    assert ports[0] == 10000
    assert ports[-1] == 10998


def test_s3_is_configured_by_any_bucket_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKET_NAME", "recordings")
    assert load_settings().s3_configured
