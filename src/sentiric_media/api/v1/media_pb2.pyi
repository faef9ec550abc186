from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SdpType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SDP_TYPE_UNSPECIFIED: _ClassVar[SdpType]
    SDP_TYPE_OFFER: _ClassVar[SdpType]
    SDP_TYPE_ANSWER: _ClassVar[SdpType]

class SrtpPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SRTP_POLICY_OPTIONAL: _ClassVar[SrtpPolicy]
    SRTP_POLICY_REQUIRED: _ClassVar[SrtpPolicy]
    SRTP_POLICY_DISABLED: _ClassVar[SrtpPolicy]
SDP_TYPE_UNSPECIFIED: SdpType
SDP_TYPE_OFFER: SdpType
SDP_TYPE_ANSWER: SdpType
SRTP_POLICY_OPTIONAL: SrtpPolicy
SRTP_POLICY_REQUIRED: SrtpPolicy
SRTP_POLICY_DISABLED: SrtpPolicy

class AllocatePortRequest(_message.Message):
    __slots__ = ("call_id",)
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    def __init__(self, call_id: _Optional[str] = ...) -> None: ...

class AllocatePortResponse(_message.Message):
    __slots__ = ("rtp_port",)
    RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    rtp_port: int
    def __init__(self, rtp_port: _Optional[int] = ...) -> None: ...

class ReleasePortRequest(_message.Message):
    __slots__ = ("rtp_port",)
    RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    rtp_port: int
    def __init__(self, rtp_port: _Optional[int] = ...) -> None: ...

class ReleasePortResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class PlayAudioRequest(_message.Message):
    __slots__ = ("audio_uri", "server_rtp_port", "rtp_target_addr", "interruptible")
    AUDIO_URI_FIELD_NUMBER: _ClassVar[int]
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    RTP_TARGET_ADDR_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTIBLE_FIELD_NUMBER: _ClassVar[int]
    audio_uri: str
    server_rtp_port: int
    rtp_target_addr: str
    interruptible: bool
    def __init__(self, audio_uri: _Optional[str] = ..., server_rtp_port: _Optional[int] = ..., rtp_target_addr: _Optional[str] = ..., interruptible: _Optional[bool] = ...) -> None: ...

class PlayAudioResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class RecordAudioRequest(_message.Message):
    __slots__ = ("server_rtp_port", "target_sample_rate", "frame_ms")
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    FRAME_MS_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    target_sample_rate: int
    frame_ms: int
    def __init__(self, server_rtp_port: _Optional[int] = ..., target_sample_rate: _Optional[int] = ..., frame_ms: _Optional[int] = ...) -> None: ...

class RecordAudioResponse(_message.Message):
    __slots__ = ("audio_data", "media_type")
    AUDIO_DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    audio_data: bytes
    media_type: str
    def __init__(self, audio_data: _Optional[bytes] = ..., media_type: _Optional[str] = ...) -> None: ...

class StartRecordingRequest(_message.Message):
    __slots__ = ("server_rtp_port", "output_uri", "sample_rate", "format", "call_id", "trace_id", "channels")
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_URI_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    output_uri: str
    sample_rate: int
    format: str
    call_id: str
    trace_id: str
    channels: int
    def __init__(self, server_rtp_port: _Optional[int] = ..., output_uri: _Optional[str] = ..., sample_rate: _Optional[int] = ..., format: _Optional[str] = ..., call_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., channels: _Optional[int] = ...) -> None: ...

class StartRecordingResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class StopRecordingRequest(_message.Message):
    __slots__ = ("server_rtp_port",)
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    def __init__(self, server_rtp_port: _Optional[int] = ...) -> None: ...

class StopRecordingResponse(_message.Message):
    __slots__ = ("success", "recording_uri", "duration_ms")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    recording_uri: str
    duration_ms: int
    def __init__(self, success: _Optional[bool] = ..., recording_uri: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class StreamAudioToCallRequest(_message.Message):
    __slots__ = ("call_id", "audio_chunk")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CHUNK_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    audio_chunk: bytes
    def __init__(self, call_id: _Optional[str] = ..., audio_chunk: _Optional[bytes] = ...) -> None: ...

class StreamAudioToCallResponse(_message.Message):
    __slots__ = ("success", "error_message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    error_message: str
    def __init__(self, success: _Optional[bool] = ..., error_message: _Optional[str] = ...) -> None: ...

class StopAudioRequest(_message.Message):
    __slots__ = ("server_rtp_port",)
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    def __init__(self, server_rtp_port: _Optional[int] = ...) -> None: ...

class StopAudioResponse(_message.Message):
    __slots__ = ("success", "stopped")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    success: bool
    stopped: int
    def __init__(self, success: _Optional[bool] = ..., stopped: _Optional[int] = ...) -> None: ...

class NegotiateSdpRequest(_message.Message):
    __slots__ = ("server_rtp_port", "remote_sdp", "type", "codec_preferences", "srtp", "public_address")
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_SDP_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CODEC_PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    remote_sdp: str
    type: SdpType
    codec_preferences: _containers.RepeatedScalarFieldContainer[str]
    srtp: SrtpPolicy
    public_address: str
    def __init__(self, server_rtp_port: _Optional[int] = ..., remote_sdp: _Optional[str] = ..., type: _Optional[_Union[SdpType, str]] = ..., codec_preferences: _Optional[_Iterable[str]] = ..., srtp: _Optional[_Union[SrtpPolicy, str]] = ..., public_address: _Optional[str] = ...) -> None: ...

class NegotiateSdpResponse(_message.Message):
    __slots__ = ("local_sdp", "codec", "payload_type", "clock_rate", "dtmf_payload_type", "srtp_suite", "remote_rtp_addr")
    LOCAL_SDP_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLOCK_RATE_FIELD_NUMBER: _ClassVar[int]
    DTMF_PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    SRTP_SUITE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_RTP_ADDR_FIELD_NUMBER: _ClassVar[int]
    local_sdp: str
    codec: str
    payload_type: int
    clock_rate: int
    dtmf_payload_type: int
    srtp_suite: str
    remote_rtp_addr: str
    def __init__(self, local_sdp: _Optional[str] = ..., codec: _Optional[str] = ..., payload_type: _Optional[int] = ..., clock_rate: _Optional[int] = ..., dtmf_payload_type: _Optional[int] = ..., srtp_suite: _Optional[str] = ..., remote_rtp_addr: _Optional[str] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("server_rtp_port", "keywords")
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    keywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, server_rtp_port: _Optional[int] = ..., keywords: _Optional[_Iterable[str]] = ...) -> None: ...

class MediaEvent(_message.Message):
    __slots__ = ("call_id", "server_rtp_port", "timestamp_ms", "media_time_ms", "speech_started", "speech_ended", "barge_in", "dtmf", "keyword", "emotion", "playback_started", "playback_finished", "rtp_timeout", "recording_available", "quality")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    SPEECH_STARTED_FIELD_NUMBER: _ClassVar[int]
    SPEECH_ENDED_FIELD_NUMBER: _ClassVar[int]
    BARGE_IN_FIELD_NUMBER: _ClassVar[int]
    DTMF_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    EMOTION_FIELD_NUMBER: _ClassVar[int]
    PLAYBACK_STARTED_FIELD_NUMBER: _ClassVar[int]
    PLAYBACK_FINISHED_FIELD_NUMBER: _ClassVar[int]
    RTP_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RECORDING_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    server_rtp_port: int
    timestamp_ms: int
    media_time_ms: int
    speech_started: SpeechStarted
    speech_ended: SpeechEnded
    barge_in: BargeIn
    dtmf: DtmfDigit
    keyword: KeywordDetected
    emotion: EmotionEstimate
    playback_started: PlaybackStarted
    playback_finished: PlaybackFinished
    rtp_timeout: RtpTimeout
    recording_available: RecordingAvailable
    quality: QualityReport
    def __init__(self, call_id: _Optional[str] = ..., server_rtp_port: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., media_time_ms: _Optional[int] = ..., speech_started: _Optional[_Union[SpeechStarted, _Mapping]] = ..., speech_ended: _Optional[_Union[SpeechEnded, _Mapping]] = ..., barge_in: _Optional[_Union[BargeIn, _Mapping]] = ..., dtmf: _Optional[_Union[DtmfDigit, _Mapping]] = ..., keyword: _Optional[_Union[KeywordDetected, _Mapping]] = ..., emotion: _Optional[_Union[EmotionEstimate, _Mapping]] = ..., playback_started: _Optional[_Union[PlaybackStarted, _Mapping]] = ..., playback_finished: _Optional[_Union[PlaybackFinished, _Mapping]] = ..., rtp_timeout: _Optional[_Union[RtpTimeout, _Mapping]] = ..., recording_available: _Optional[_Union[RecordingAvailable, _Mapping]] = ..., quality: _Optional[_Union[QualityReport, _Mapping]] = ...) -> None: ...

class SpeechStarted(_message.Message):
    __slots__ = ("probability",)
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    probability: float
    def __init__(self, probability: _Optional[float] = ...) -> None: ...

class SpeechEnded(_message.Message):
    __slots__ = ("duration_ms",)
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    def __init__(self, duration_ms: _Optional[int] = ...) -> None: ...

class BargeIn(_message.Message):
    __slots__ = ("audio_uri", "played_ms", "reaction_ms")
    AUDIO_URI_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    REACTION_MS_FIELD_NUMBER: _ClassVar[int]
    audio_uri: str
    played_ms: int
    reaction_ms: int
    def __init__(self, audio_uri: _Optional[str] = ..., played_ms: _Optional[int] = ..., reaction_ms: _Optional[int] = ...) -> None: ...

class DtmfDigit(_message.Message):
    __slots__ = ("digit", "duration_ms", "source")
    DIGIT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    digit: str
    duration_ms: int
    source: str
    def __init__(self, digit: _Optional[str] = ..., duration_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class KeywordDetected(_message.Message):
    __slots__ = ("keyword", "confidence")
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    keyword: str
    confidence: float
    def __init__(self, keyword: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class EmotionEstimate(_message.Message):
    __slots__ = ("label", "arousal", "valence", "confidence")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    AROUSAL_FIELD_NUMBER: _ClassVar[int]
    VALENCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    label: str
    arousal: float
    valence: float
    confidence: float
    def __init__(self, label: _Optional[str] = ..., arousal: _Optional[float] = ..., valence: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class PlaybackStarted(_message.Message):
    __slots__ = ("audio_uri",)
    AUDIO_URI_FIELD_NUMBER: _ClassVar[int]
    audio_uri: str
    def __init__(self, audio_uri: _Optional[str] = ...) -> None: ...

class PlaybackFinished(_message.Message):
    __slots__ = ("audio_uri", "interrupted", "played_ms")
    AUDIO_URI_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    audio_uri: str
    interrupted: bool
    played_ms: int
    def __init__(self, audio_uri: _Optional[str] = ..., interrupted: _Optional[bool] = ..., played_ms: _Optional[int] = ...) -> None: ...

class RtpTimeout(_message.Message):
    __slots__ = ("silent_ms",)
    SILENT_MS_FIELD_NUMBER: _ClassVar[int]
    silent_ms: int
    def __init__(self, silent_ms: _Optional[int] = ...) -> None: ...

class RecordingAvailable(_message.Message):
    __slots__ = ("recording_uri", "duration_ms")
    RECORDING_URI_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    recording_uri: str
    duration_ms: int
    def __init__(self, recording_uri: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("packets_received", "packets_lost", "jitter_ms", "mos", "packets_sent", "rtt_ms", "peer_loss_fraction")
    PACKETS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PACKETS_LOST_FIELD_NUMBER: _ClassVar[int]
    JITTER_MS_FIELD_NUMBER: _ClassVar[int]
    MOS_FIELD_NUMBER: _ClassVar[int]
    PACKETS_SENT_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PEER_LOSS_FRACTION_FIELD_NUMBER: _ClassVar[int]
    packets_received: int
    packets_lost: int
    jitter_ms: float
    mos: float
    packets_sent: int
    rtt_ms: float
    peer_loss_fraction: float
    def __init__(self, packets_received: _Optional[int] = ..., packets_lost: _Optional[int] = ..., jitter_ms: _Optional[float] = ..., mos: _Optional[float] = ..., packets_sent: _Optional[int] = ..., rtt_ms: _Optional[float] = ..., peer_loss_fraction: _Optional[float] = ...) -> None: ...

class SendDtmfRequest(_message.Message):
    __slots__ = ("server_rtp_port", "digits", "duration_ms")
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    DIGITS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    digits: str
    duration_ms: int
    def __init__(self, server_rtp_port: _Optional[int] = ..., digits: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class SendDtmfResponse(_message.Message):
    __slots__ = ("success",)
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    def __init__(self, success: _Optional[bool] = ...) -> None: ...

class GetSessionStatsRequest(_message.Message):
    __slots__ = ("server_rtp_port",)
    SERVER_RTP_PORT_FIELD_NUMBER: _ClassVar[int]
    server_rtp_port: int
    def __init__(self, server_rtp_port: _Optional[int] = ...) -> None: ...

class SessionStats(_message.Message):
    __slots__ = ("call_id", "codec", "remote_rtp_addr", "srtp", "quality", "recording", "queued_prompts")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    REMOTE_RTP_ADDR_FIELD_NUMBER: _ClassVar[int]
    SRTP_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    call_id: str
    codec: str
    remote_rtp_addr: str
    srtp: bool
    quality: QualityReport
    recording: bool
    queued_prompts: int
    def __init__(self, call_id: _Optional[str] = ..., codec: _Optional[str] = ..., remote_rtp_addr: _Optional[str] = ..., srtp: _Optional[bool] = ..., quality: _Optional[_Union[QualityReport, _Mapping]] = ..., recording: _Optional[bool] = ..., queued_prompts: _Optional[int] = ...) -> None: ...
