"""SRTP/SRTCP for one media session (RFC 3711; AEAD-GCM per RFC 7714), on pylibsrtp.

`SrtpContext` owns the two libsrtp sessions of a call: outbound, under our key
(the `a=crypto` we sent), and inbound, under the peer's key. It turns RTP/RTCP
into SRTP/SRTCP and back, drops what does not authenticate and counts why, and
switches keys on a re-INVITE without losing the peer's late packets.

Drop reasons (keys of the `Counter` the caller passes in):
- `srtp_auth_failed`: the tag does not verify. Tampered packets, packets under
  another key and plain RTP sent to an SRTP session all land here: without the
  key, plain RTP is indistinguishable from a forged SRTP packet.
- `srtp_replay`: authentic, but its index was seen already or is older than the
  replay window. libsrtp checks the index before the tag, so a replay of a
  genuine packet is told apart from a tampered one by libsrtp's status code.
- `srtp_malformed`: not a packet libsrtp can read (short, not version 2, too long).
- `srtp_key_expired`: authentic, but past the lifetime the peer gave its key.
- `srtp_error`: any other libsrtp failure.

Rekey rule: `rekey` switches each direction whose key changed; a direction
whose suite and key are unchanged keeps its libsrtp session, and with it the
rollover counter and replay window (a fresh session would lose them after
65 536 packets, see LESSONS.md). The replaced inbound session keeps decrypting
for `grace` seconds (2 s: late answers and packets in flight), and for at most
`REORDER_GRACE` more once a packet authenticates under the new key (only
reordered stragglers can still be old then).

One context belongs to one session on the event loop: pylibsrtp sessions share
a buffer per session and are not thread-safe. Keys never appear in repr, str or
messages; the `Crypto` records kept here hide theirs.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable

from pylibsrtp import Error, Policy, Session

from sentiric_media.media.sdp.crypto import MAX_WSH, MIN_WSH, Crypto, Suite

AUTH_FAILED = "srtp_auth_failed"
REPLAY = "srtp_replay"
MALFORMED = "srtp_malformed"
KEY_EXPIRED = "srtp_key_expired"
OTHER = "srtp_error"

REKEY_GRACE = 2.0  # seconds the old inbound key still decrypts after a rekey
REORDER_GRACE = 0.25  # ... and at most this long once the new key has authenticated a packet

RTP_HEADER = 12
RTCP_HEADER = 8

# pylibsrtp raises Error(text) with libsrtp's status text; these are the ones we tell apart.
_REASONS = {
    "authentication failure": AUTH_FAILED,
    "replay check failed (bad index)": REPLAY,
    "replay check failed (index too old)": REPLAY,
    "packet index is too old to consider": REPLAY,
    "unsupported parameter": MALFORMED,  # what libsrtp says of a packet shorter than its header
    "error parsing data": MALFORMED,
}


class SrtpError(Exception):
    """We could not protect a packet of ours (too long, key worn out); the message has no key."""


def _usable(crypto: Crypto, side: str) -> Suite:
    if not isinstance(crypto.suite, Suite):
        raise ValueError(f"{side} crypto {crypto}: crypto-suite not supported")
    if len(crypto.keys) != 1 or crypto.mki is not None:
        raise ValueError(f"{side} crypto {crypto}: MKI and several keys are not supported")
    return crypto.suite


def _same_key(a: Crypto, b: Crypto) -> bool:
    return a.suite == b.suite and secrets.compare_digest(a.material, b.material)


class _Inbound:
    """The peer's key in a libsrtp session, and how many more packets it may authenticate."""

    __slots__ = ("crypto", "remaining", "session")

    def __init__(self, theirs: Crypto) -> None:
        suite = _usable(theirs, "inbound")
        policy = Policy(
            key=theirs.material, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=suite.profile
        )
        hint = theirs.window_size_hint
        if hint is not None:
            # RFC 4568 §6.3.6: honour the peer's replay window hint within libsrtp's range.
            policy.window_size = max(MIN_WSH, min(hint, MAX_WSH))
        self.session = Session(policy)
        self.crypto = theirs
        # The lifetime counts packets (SRTP and SRTCP) under the key; None is the suite's own.
        self.remaining = theirs.lifetime


def _outbound(ours: Crypto) -> Session:
    suite = _usable(ours, "outbound")
    # allow_repeat_tx stays off: re-sending an index with other content would reuse keystream.
    return Session(
        Policy(key=ours.material, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=suite.profile)
    )


class SrtpContext:
    """Protect with `ours`, unprotect with `theirs`; failed packets become None and a count."""

    def __init__(
        self,
        ours: Crypto,
        theirs: Crypto,
        drops: Counter[str],
        *,
        grace: float = REKEY_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ours = ours
        self._outbound = _outbound(ours)
        self._inbound = _Inbound(theirs)
        self._previous: _Inbound | None = None
        self._deadline = 0.0
        self._confirmed = True  # has the current inbound key authenticated a packet since rekey?
        self._drops = drops
        self.grace = grace
        self._clock = clock

    def __repr__(self) -> str:
        grace = ", old inbound key in grace" if self._previous is not None else ""
        return f"SrtpContext(out={self._ours}, in={self._inbound.crypto}{grace})"

    @property
    def suite(self) -> Suite:
        """The suite of what we send (the one negotiated)."""
        assert isinstance(self._ours.suite, Suite)
        return self._ours.suite

    @property
    def in_grace(self) -> bool:
        """Whether a replaced inbound key is still accepted."""
        return self._previous is not None and self._clock() < self._deadline

    def protect(self, rtp: bytes) -> bytes:
        try:
            return self._outbound.protect(rtp)
        except (Error, ValueError) as error:
            raise SrtpError(f"cannot protect an RTP packet of {len(rtp)} bytes: {error}") from None

    def protect_rtcp(self, rtcp: bytes) -> bytes:
        try:
            return self._outbound.protect_rtcp(rtcp)
        except (Error, ValueError) as error:
            raise SrtpError(
                f"cannot protect an RTCP packet of {len(rtcp)} bytes: {error}"
            ) from None

    def unprotect(self, packet: bytes) -> bytes | None:
        # Checked here because libsrtp reads the header before anything else.
        if len(packet) < RTP_HEADER or packet[0] >> 6 != 2:
            self._drops[MALFORMED] += 1
            return None
        return self._unprotect(packet, rtcp=False)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        if len(packet) < RTCP_HEADER or packet[0] >> 6 != 2:
            self._drops[MALFORMED] += 1
            return None
        return self._unprotect(packet, rtcp=True)

    def rekey(self, ours: Crypto, theirs: Crypto) -> None:
        """Switch to the keys of a new offer/answer; see the module docstring for the rule."""
        if not _same_key(ours, self._ours):
            self._outbound = _outbound(ours)  # the peer decrypts with it once it has our answer
        self._ours = ours
        if _same_key(theirs, self._inbound.crypto):
            return
        self._previous = self._inbound  # only one generation: an older one is past its use
        self._inbound = _Inbound(theirs)
        self._deadline = self._clock() + self.grace
        self._confirmed = False

    def _unprotect(self, packet: bytes, *, rtcp: bool) -> bytes | None:
        previous = self._previous
        if previous is None:
            order: tuple[_Inbound, ...] = (self._inbound,)
        elif self._clock() >= self._deadline:
            self._previous = None
            order = (self._inbound,)
        else:
            # Until the peer has switched, most packets are under the old key: try it first.
            order = (self._inbound, previous) if self._confirmed else (previous, self._inbound)
        reason = AUTH_FAILED
        for inbound in order:
            try:
                if rtcp:
                    plain = inbound.session.unprotect_rtcp(packet)
                else:
                    plain = inbound.session.unprotect(packet)
            except Error as error:
                # A failed tag leaves libsrtp's state untouched, so the other key may still try.
                reason = _REASONS.get(str(error), OTHER)
                if reason == AUTH_FAILED:
                    continue
                break
            except ValueError:  # longer than pylibsrtp's 1500-byte buffer
                reason = MALFORMED
                break
            if inbound.remaining is not None:
                if inbound.remaining <= 0:
                    reason = KEY_EXPIRED
                    break
                inbound.remaining -= 1
            if inbound is self._inbound and not self._confirmed:
                self._confirmed = True
                self._deadline = min(self._deadline, self._clock() + REORDER_GRACE)
            return plain
        self._drops[reason] += 1
        return None
