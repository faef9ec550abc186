"""`NegotiateSdp` on a session: our answer (or offer), applied to the live media.

The decisions are `media.negotiation`'s (pure offer/answer over `media.sdp`);
this module knows the service: which codecs this process may use
(`MEDIA_SERVICE_CODECS`, less those whose library is missing), which address
goes into `c=`, the session's `o=` line, the offer waiting for its answer,
and how an agreement changes the session in place (a re-offer keeps the
session, its recording, live stream and events).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sentiric_media.config import Settings
from sentiric_media.errors import FailedPrecondition, InvalidArgument
from sentiric_media.media.agreement import Agreement
from sentiric_media.media.codecs import CODECS, UNAVAILABLE, Codec
from sentiric_media.media.negotiation import (
    LocalEndpoint,
    SrtpPolicy,
    accept_answer,
    answer,
    offer,
    resolve_preferences,
)
from sentiric_media.media.sdp import parse_sdp, write_sdp
from sentiric_media.media.session import MediaSession
from sentiric_media.media.transport import format_address, reachable

log = logging.getLogger(__name__)

# SdpType of the contract.
SDP_OFFER, SDP_ANSWER = 1, 2


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What `NegotiateSdp` answers: our SDP, and what was agreed (None while we wait)."""

    local_sdp: str
    agreement: Agreement | None


def supported_codecs(settings: Settings) -> list[Codec]:
    """`MEDIA_SERVICE_CODECS` in order, less the codecs this machine cannot run."""
    codecs = []
    for name in settings.codec_names:
        codec = CODECS.get(name.lower())
        if codec is not None:
            codecs.append(codec)
        else:
            log.warning(
                "codec %s is not available: %s", name, UNAVAILABLE.get(name.lower(), "unknown")
            )
    return codecs


class Negotiator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.codecs = supported_codecs(settings)
        if not self.codecs:
            log.warning("no codec of MEDIA_SERVICE_CODECS is available: NegotiateSdp will refuse")
        if settings.sdp_address is None:
            log.warning(
                "RTP_SERVICE_LISTEN_ADDRESS is %s and RTP_SERVICE_ADVERTISED_ADDRESS is unset: "
                "NegotiateSdp needs public_address in each request",
                settings.rtp_listen_address,
            )

    def negotiate(
        self,
        session: MediaSession,
        remote_sdp: str,
        sdp_type: int,
        preferences: Sequence[str],
        srtp: int,
        public_address: str,
    ) -> Negotiated:
        policy = SrtpPolicy(srtp) if srtp in {p.value for p in SrtpPolicy} else None
        if policy is None:
            raise InvalidArgument(
                f"srtp policy {srtp} is not one of {[p.value for p in SrtpPolicy]}"
            )
        chosen = resolve_preferences(list(preferences), self.codecs) if preferences else None
        local = self._local(session, public_address)
        if not remote_sdp.strip():
            text, state = offer(codecs=chosen or self.codecs, local=local, srtp_policy=policy)
            session.pending_offer = state
            names = ", ".join(codec.name for codec in chosen or self.codecs)
            session.log.info("SDP offer made (%s)", names)
            return Negotiated(write_sdp(text), None)
        description = parse_sdp(remote_sdp)
        if sdp_type == SDP_ANSWER:
            if session.pending_offer is None:
                raise FailedPrecondition(
                    f"an SDP answer for RTP port {session.port}, but no offer was made on it "
                    "(NegotiateSdp with an empty remote_sdp makes one)"
                )
            agreement = accept_answer(description, session.pending_offer)
            session.pending_offer = None
            self._apply(session, agreement)
            return Negotiated("", agreement)
        # An offer (SDP_TYPE_OFFER, or unspecified with an SDP: the common case).
        text, agreement = answer(
            description,
            supported=self.codecs,
            preferences=chosen,
            local=local,
            srtp_policy=policy,
        )
        self._apply(session, agreement)
        return Negotiated(write_sdp(text), agreement)

    def _local(self, session: MediaSession, public_address: str) -> LocalEndpoint:
        address = public_address.strip() or self.settings.sdp_address
        if address is None:
            raise FailedPrecondition(
                f"no address for our SDP: RTP_SERVICE_LISTEN_ADDRESS is "
                f"{self.settings.rtp_listen_address} (a wildcard); set "
                "RTP_SERVICE_ADVERTISED_ADDRESS or pass public_address"
            )
        if public_address.strip():
            _check_ip(address)
        session.sdp_version += 1
        return LocalEndpoint(address, session.port, session.sdp_session_id, session.sdp_version)

    def _apply(self, session: MediaSession, agreement: Agreement) -> None:
        remote = agreement.remote
        if remote is not None and session.transport is not None:
            family = session.transport.get_extra_info("socket").family
            remote = reachable(family, remote, format_address(remote))
        session.apply_media(
            agreement.send,
            agreement.receive,
            agreement.dtmf_payload_type,
            remote,
            agreement.sends,
            agreement.dtmf_clock_rate,
        )


def _check_ip(address: str) -> None:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise InvalidArgument(f"public_address {address!r} is not an IP address") from None
