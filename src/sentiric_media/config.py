"""Service settings, read from the environment (and an optional `.env` file).

The variable names are the Rust media service's, so existing deployments keep
their configuration. New settings follow the same naming style. An invalid
value stops the service at start-up with a message naming the variable
(`load_settings` raises `SettingsError`).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sentiric_media.analysis.speech import SpeechSettings

# SDP encoding names the service knows (whether this machine has their library or not).
KNOWN_CODECS = ("opus", "g722", "pcmu", "pcma", "g729")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """Every knob of the service. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        populate_by_name=True,
        extra="ignore",
        env_ignore_empty=True,
    )

    # --- gRPC and metrics -------------------------------------------------------
    grpc_port: int = Field(13031, alias="MEDIA_SERVICE_GRPC_PORT", ge=0, le=65535)
    metrics_port: int = Field(13032, alias="MEDIA_SERVICE_METRICS_PORT", ge=0, le=65535)
    listen_address: str = Field("0.0.0.0", alias="MEDIA_SERVICE_LISTEN_ADDRESS")
    cert_path: Path | None = Field(None, alias="MEDIA_SERVICE_CERT_PATH")
    key_path: Path | None = Field(None, alias="MEDIA_SERVICE_KEY_PATH")
    ca_path: Path | None = Field(None, alias="GRPC_TLS_CA_PATH")

    # --- RTP ---------------------------------------------------------------------
    rtp_listen_address: str = Field("0.0.0.0", alias="RTP_SERVICE_LISTEN_ADDRESS")
    rtp_port_min: int = Field(10000, alias="RTP_SERVICE_PORT_MIN", ge=1024, le=65534)
    rtp_port_max: int = Field(10999, alias="RTP_SERVICE_PORT_MAX", ge=1024, le=65535)
    port_quarantine_seconds: float = Field(
        5.0, alias="RTP_SERVICE_PORT_QUARANTINE_SECONDS", ge=0, le=3600
    )
    inactivity_timeout_seconds: float = Field(
        30.0, alias="RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS", gt=0, le=86400
    )
    jitter_buffer_ms: int = Field(60, alias="RTP_JITTER_BUFFER_MS", ge=20, le=500)
    rtp_advertised_address: str | None = Field(None, alias="RTP_SERVICE_ADVERTISED_ADDRESS")
    # What the service offers and accepts, in the order of its own offers.
    codecs: str = Field("opus,G722,PCMU,PCMA,G729", alias="MEDIA_SERVICE_CODECS")
    # In-band DTMF detection: only on calls without telephone-event (auto), always, or off.
    inband_dtmf: Literal["always", "auto", "off"] = Field("auto", alias="MEDIA_SERVICE_INBAND_DTMF")

    # --- voice activity (Silero VAD) ---------------------------------------------
    vad_start_threshold: float = Field(0.5, alias="MEDIA_SERVICE_VAD_START_THRESHOLD", gt=0, lt=1)
    vad_end_threshold: float = Field(0.35, alias="MEDIA_SERVICE_VAD_END_THRESHOLD", gt=0, lt=1)
    vad_min_speech_ms: int = Field(96, alias="MEDIA_SERVICE_VAD_MIN_SPEECH_MS", ge=32, le=2000)
    vad_min_silence_ms: int = Field(320, alias="MEDIA_SERVICE_VAD_MIN_SILENCE_MS", ge=32, le=5000)
    # The Silero model in a worker process (its batch never blocks the media clock).
    vad_worker: bool = Field(True, alias="MEDIA_SERVICE_VAD_WORKER")

    # PlayAudio without `interruptible` takes this; StreamAudioToCall always does.
    barge_in_default: bool = Field(False, alias="MEDIA_SERVICE_BARGE_IN_DEFAULT")
    stream_interruptible: bool = Field(False, alias="MEDIA_SERVICE_STREAM_INTERRUPTIBLE")
    barge_in_min_speech_ms: int = Field(
        160, alias="MEDIA_SERVICE_BARGE_IN_MIN_SPEECH_MS", ge=32, le=2000
    )

    # --- keyword spotting (pocketsphinx, in a worker process) ------------------
    keyword_spotting: bool = Field(True, alias="MEDIA_SERVICE_KEYWORD_SPOTTING")
    # A folder with an acoustic model and a .dict file; unset: the US-English model of the wheel.
    keyword_model: Path | None = Field(None, alias="MEDIA_SERVICE_KEYWORD_MODEL")

    # --- emotion from the caller's tone (prosody rule, or an ONNX model) ---------
    emotion: bool = Field(True, alias="MEDIA_SERVICE_EMOTION")
    emotion_model: Path | None = Field(None, alias="MEDIA_SERVICE_EMOTION_MODEL")
    # Labels of the model's classes, one per line; unset: the model's path with .labels.
    emotion_labels: Path | None = Field(None, alias="MEDIA_SERVICE_EMOTION_LABELS")

    # --- prompts and live audio --------------------------------------------------
    assets_base_path: Path = Field(Path("assets"), alias="ASSETS_BASE_PATH")
    live_audio_stream_buffer: int = Field(64, alias="LIVE_AUDIO_STREAM_BUFFER", ge=1, le=10000)
    # False: as the Rust service, no RecordAudio message while no caller audio arrives.
    live_audio_send_silence: bool = Field(True, alias="LIVE_AUDIO_SEND_SILENCE")
    max_data_uri_bytes: int = Field(
        20 * 1024 * 1024, alias="MEDIA_SERVICE_MAX_DATA_URI_BYTES", ge=1024
    )
    max_prompt_seconds: float = Field(
        3600.0, alias="MEDIA_SERVICE_MAX_PROMPT_SECONDS", gt=0, le=86400
    )
    prompt_cache_mb: int = Field(256, alias="MEDIA_SERVICE_PROMPT_CACHE_MB", ge=0)
    stream_idle_timeout_seconds: float = Field(
        10.0, alias="MEDIA_SERVICE_STREAM_IDLE_TIMEOUT_SECONDS", gt=0
    )

    # --- recordings, storage and events -----------------------------------------
    recordings_path: Path = Field(Path("recordings"), alias="MEDIA_SERVICE_RECORDINGS_PATH")
    spool_path: Path | None = Field(None, alias="MEDIA_SERVICE_SPOOL_PATH")
    recording_window_seconds: float = Field(
        2.0, alias="MEDIA_SERVICE_RECORDING_WINDOW_SECONDS", ge=0.5, le=30
    )
    storage_retry_max_seconds: float = Field(
        30.0, alias="MEDIA_SERVICE_STORAGE_RETRY_MAX_SECONDS", ge=1, le=3600
    )
    bucket_endpoint_url: str | None = Field(None, alias="BUCKET_ENDPOINT_URL")
    bucket_region: str = Field("us-east-1", alias="BUCKET_REGION")
    bucket_access_key_id: str | None = Field(None, alias="BUCKET_ACCESS_KEY_ID")
    bucket_secret_access_key: str | None = Field(None, alias="BUCKET_SECRET_ACCESS_KEY")
    bucket_name: str | None = Field(None, alias="BUCKET_NAME")
    rabbitmq_url: str | None = Field(None, alias="RABBITMQ_URL")
    rabbitmq_exchange: str = Field("sentiric_events", alias="RABBITMQ_EXCHANGE")
    event_outbox_max: int = Field(10000, alias="MEDIA_SERVICE_EVENT_OUTBOX_MAX", ge=10)

    # --- logging -------------------------------------------------------------
    env: Literal["production", "development"] = Field("development", alias="ENV")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", alias="LOG_LEVEL"
    )

    def speech(self) -> SpeechSettings:
        """The voice-activity settings, as the analysis takes them."""
        return SpeechSettings(
            self.vad_start_threshold,
            self.vad_end_threshold,
            self.vad_min_speech_ms,
            self.vad_min_silence_ms,
        )

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if self.rtp_port_min > self.rtp_port_max:
            raise ValueError(
                f"RTP_SERVICE_PORT_MIN ({self.rtp_port_min}) is above "
                f"RTP_SERVICE_PORT_MAX ({self.rtp_port_max})"
            )
        if not self.even_ports():
            raise ValueError(
                f"RTP_SERVICE_PORT_MIN..RTP_SERVICE_PORT_MAX ({self.rtp_port_min}.."
                f"{self.rtp_port_max}) holds no even port"
            )
        tls = {
            "MEDIA_SERVICE_CERT_PATH": self.cert_path,
            "MEDIA_SERVICE_KEY_PATH": self.key_path,
            "GRPC_TLS_CA_PATH": self.ca_path,
        }
        given = [name for name, value in tls.items() if value is not None]
        if given and len(given) != len(tls):
            missing = sorted(set(tls) - set(given))
            raise ValueError(
                f"mutual TLS needs all of {', '.join(tls)}; {', '.join(missing)} not set"
            )
        for name, value in tls.items():
            if value is not None and not value.is_file():
                raise ValueError(f"{name}: no such file: {value}")
        if self.vad_end_threshold >= self.vad_start_threshold:
            raise ValueError(
                f"MEDIA_SERVICE_VAD_END_THRESHOLD ({self.vad_end_threshold}) must be below "
                f"MEDIA_SERVICE_VAD_START_THRESHOLD ({self.vad_start_threshold})"
            )
        unknown = [name for name in self.codec_names if name.lower() not in KNOWN_CODECS]
        if unknown or not self.codec_names:
            raise ValueError(
                f"MEDIA_SERVICE_CODECS ({self.codecs!r}): unknown codec {', '.join(unknown)}; "
                f"use names from {', '.join(KNOWN_CODECS)}"
                if unknown
                else "MEDIA_SERVICE_CODECS is empty"
            )
        if self.rtp_advertised_address is not None:
            try:
                ipaddress.ip_address(self.rtp_advertised_address)
            except ValueError:
                raise ValueError(
                    f"RTP_SERVICE_ADVERTISED_ADDRESS ({self.rtp_advertised_address!r}) "
                    "is not an IP address"
                ) from None
        return self

    @property
    def codec_names(self) -> list[str]:
        """`MEDIA_SERVICE_CODECS` as a list of SDP encoding names, in order."""
        return [name.strip() for name in self.codecs.split(",") if name.strip()]

    @property
    def sdp_address(self) -> str | None:
        """The address our SDP names: the advertised one, else a non-wildcard listen address."""
        if self.rtp_advertised_address:
            return self.rtp_advertised_address
        if ipaddress.ip_address(self.rtp_listen_address).is_unspecified:
            return None
        return self.rtp_listen_address

    def even_ports(self) -> range:
        """The RTP ports the pool hands out: the even ports of [min, max]."""
        first = self.rtp_port_min + (self.rtp_port_min % 2)
        return range(first, self.rtp_port_max + 1, 2)

    @property
    def tls_enabled(self) -> bool:
        return self.cert_path is not None

    @property
    def s3_configured(self) -> bool:
        return bool(self.bucket_endpoint_url or self.bucket_access_key_id or self.bucket_name)

    @property
    def spool_dir(self) -> Path:
        return self.spool_path or (self.recordings_path / ".spool")


def load_settings(**overrides: object) -> Settings:
    """Read the settings from the environment and `ENV_FILE` (default `.env`).

    Keyword overrides (by field name) win over the environment; tests use them.
    """
    env_file = os.environ.get("ENV_FILE", ".env")
    try:
        return Settings(_env_file=env_file if Path(env_file).is_file() else None, **overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, dict) or value is None else f" (got {value!r})"
        lines.append(f"{location}: {message}{shown}" if location else message)
    return "invalid configuration: " + "; ".join(lines)
