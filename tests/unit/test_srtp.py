"""SRTP/SRTCP (media/srtp): round trips per suite, drops by reason, rekey with late packets."""

from __future__ import annotations

import struct
from collections import Counter

import pytest

from sentiric_media.media.sdp.crypto import (
    Crypto,
    KeyParams,
    Suite,
    format_crypto,
    new_crypto,
    parse_crypto,
)
from sentiric_media.media.srtp import (
    AUTH_FAILED,
    KEY_EXPIRED,
    MALFORMED,
    REORDER_GRACE,
    REPLAY,
    SrtpContext,
    SrtpError,
)

SSRC = 0x1234ABCD


def rtp(seq: int, ssrc: int = SSRC, payload: bytes | None = None) -> bytes:
    body = payload if payload is not None else bytes((seq + i) & 0xFF for i in range(160))
    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160 & 0xFFFFFFFF, ssrc) + body


def rtcp_sr(ssrc: int = SSRC) -> bytes:
    # Sender report, no report blocks: header, SSRC, NTP (8), RTP ts, packets, octets.
    return struct.pack("!BBHIIIIII", 0x80, 200, 6, ssrc, 1, 2, 3, 4, 5)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pair(suite: Suite, clock: Clock | None = None) -> tuple[SrtpContext, SrtpContext, Counter[str]]:
    """Two ends of a call: `a` and `b`, each sending under its own key."""
    key_a, key_b = new_crypto(1, suite), new_crypto(1, suite)
    drops: Counter[str] = Counter()
    kwargs = {"clock": clock} if clock else {}
    a = SrtpContext(key_a, key_b, Counter(), **kwargs)
    b = SrtpContext(key_b, key_a, drops, **kwargs)
    return a, b, drops


@pytest.mark.parametrize("suite", list(Suite))
def test_round_trip_each_suite(suite: Suite) -> None:
    a, b, drops = pair(suite)
    for seq in range(1, 50):
        packet = rtp(seq)
        protected = a.protect(packet)
        assert protected != packet
        assert protected[:12] == packet[:12]  # the header stays in the clear
        assert b.unprotect(protected) == packet
    assert not drops


@pytest.mark.parametrize("suite", list(Suite))
def test_rtcp_round_trip(suite: Suite) -> None:
    a, b, drops = pair(suite)
    report = rtcp_sr()
    protected = a.protect_rtcp(report)
    assert protected != report
    assert b.unprotect_rtcp(protected) == report
    assert b.unprotect_rtcp(protected) is None  # SRTCP has its own replay window
    assert drops == Counter({REPLAY: 1})


@pytest.mark.parametrize("suite", list(Suite))
def test_tampered_packet_is_dropped_as_auth_failure(suite: Suite) -> None:
    a, b, drops = pair(suite)
    protected = bytearray(a.protect(rtp(1)))
    protected[30] ^= 0x01
    assert b.unprotect(bytes(protected)) is None
    assert drops == Counter({AUTH_FAILED: 1})
    # A failed tag leaves the session intact: the next genuine packet passes.
    assert b.unprotect(a.protect(rtp(2))) == rtp(2)


@pytest.mark.parametrize("suite", list(Suite))
def test_replay_is_dropped_and_told_apart(suite: Suite) -> None:
    a, b, drops = pair(suite)
    protected = a.protect(rtp(1))
    assert b.unprotect(protected) == rtp(1)
    assert b.unprotect(protected) is None
    assert drops == Counter({REPLAY: 1})


def test_packet_older_than_the_replay_window_is_a_replay() -> None:
    a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_80)
    early = a.protect(rtp(1))
    for seq in range(2, 400):
        b.unprotect(a.protect(rtp(seq)))
    assert b.unprotect(early) is None
    assert drops == Counter({REPLAY: 1})


def test_reordered_packets_within_the_window_pass() -> None:
    a, b, drops = pair(Suite.AEAD_AES_128_GCM)
    packets = [a.protect(rtp(seq)) for seq in range(1, 11)]
    for index in (0, 2, 1, 5, 3, 4, 9, 6, 8, 7):
        assert b.unprotect(packets[index]) == rtp(index + 1)
    assert not drops


def test_plain_rtp_on_an_srtp_session_is_dropped() -> None:
    _a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_80)
    assert b.unprotect(rtp(1)) is None
    assert drops == Counter({AUTH_FAILED: 1})


@pytest.mark.parametrize("packet", [b"", b"\x80\x00", bytes(11), b"\x00" * 40, b"\xc0" + bytes(40)])
def test_malformed_packets_are_counted(packet: bytes) -> None:
    _a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_80)
    assert b.unprotect(packet) is None
    assert b.unprotect_rtcp(packet[:7]) is None
    assert drops == Counter({MALFORMED: 2})


def test_oversized_packet_is_malformed_inbound_and_an_error_outbound() -> None:
    a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_80)
    big = rtp(1, payload=bytes(1600))
    assert b.unprotect(big) is None
    assert drops == Counter({MALFORMED: 1})
    with pytest.raises(SrtpError, match="1612 bytes"):
        a.protect(big)


def test_several_ssrcs_share_one_context() -> None:
    a, b, drops = pair(Suite.AEAD_AES_256_GCM)
    for ssrc in (1, 2, 3):
        assert b.unprotect(a.protect(rtp(5, ssrc))) == rtp(5, ssrc)
    assert not drops


def test_a_context_built_from_parsed_sdp_talks_to_one_from_our_records() -> None:
    ours, theirs = (
        new_crypto(1, Suite.AES_CM_128_HMAC_SHA1_32),
        new_crypto(1, Suite.AES_CM_128_HMAC_SHA1_32),
    )
    local = SrtpContext(ours, theirs, Counter())
    remote = SrtpContext(
        parse_crypto(format_crypto(theirs)), parse_crypto(format_crypto(ours)), Counter()
    )
    assert remote.unprotect(local.protect(rtp(9))) == rtp(9)
    assert local.unprotect(remote.protect(rtp(10))) == rtp(10)


def test_peer_key_lifetime_is_enforced() -> None:
    ours = new_crypto(1, Suite.AES_CM_128_HMAC_SHA1_80)
    sender_key = new_crypto(1, Suite.AES_CM_128_HMAC_SHA1_80)
    limited = Crypto(1, sender_key.suite, (KeyParams(sender_key.material, lifetime=3),))
    sender = SrtpContext(sender_key, ours, Counter())
    drops: Counter[str] = Counter()
    receiver = SrtpContext(ours, limited, drops)
    results = [receiver.unprotect(sender.protect(rtp(seq))) for seq in range(1, 6)]
    assert [r is not None for r in results] == [True, True, True, False, False]
    assert drops == Counter({KEY_EXPIRED: 2})


def test_rekey_keeps_late_old_key_packets_for_the_grace_period() -> None:
    clock = Clock()
    suite = Suite.AES_CM_128_HMAC_SHA1_80
    a, b, drops = pair(suite, clock)
    for seq in range(1, 5):
        assert b.unprotect(a.protect(rtp(seq))) == rtp(seq)
    late = [a.protect(rtp(seq)) for seq in (5, 6)]

    # Re-INVITE: a gets a new key (b keeps its own), b learns it.
    a_new = new_crypto(2, suite)
    b_key = a._inbound.crypto  # what a decrypts with is b's key: unchanged
    a.rekey(a_new, b_key)
    b.rekey(b._ours, a_new)
    assert b.in_grace
    assert "grace" in repr(b)

    assert b.unprotect(late[0]) == rtp(5)  # old key, still accepted
    assert b.unprotect(a.protect(rtp(7))) == rtp(7)  # first packet under the new key
    clock.now += REORDER_GRACE / 2
    assert b.unprotect(late[1]) == rtp(6)  # a reordered straggler, just in time
    clock.now += REORDER_GRACE
    assert not b.in_grace
    assert b.unprotect(late[1]) is None  # the old key is gone
    assert b.unprotect(a.protect(rtp(8))) == rtp(8)
    assert drops == Counter({AUTH_FAILED: 1})


def test_rekey_grace_ends_after_two_seconds_without_new_packets() -> None:
    clock = Clock()
    suite = Suite.AEAD_AES_128_GCM
    a, b, drops = pair(suite, clock)
    old_sender = SrtpContext(a._ours, b._ours, Counter())  # a copy of a's old outbound key
    b.rekey(b._ours, new_crypto(1, suite))
    clock.now += 1.9
    assert b.unprotect(old_sender.protect(rtp(1))) == rtp(1)
    clock.now += 0.2
    assert b.unprotect(old_sender.protect(rtp(2))) is None
    assert drops == Counter({AUTH_FAILED: 1})


def test_rekey_with_the_same_keys_keeps_the_sessions() -> None:
    # A re-INVITE that repeats the keys must keep libsrtp's state (rollover counter, replay).
    a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_80)
    protected = a.protect(rtp(1))
    assert b.unprotect(protected) == rtp(1)
    inbound = b._inbound
    b.rekey(parse_crypto(format_crypto(b._ours)), parse_crypto(format_crypto(a._ours)))
    assert b._inbound is inbound
    assert not b.in_grace
    assert b.unprotect(protected) is None  # still a replay: the window survived
    assert drops == Counter({REPLAY: 1})


def test_sequence_wrap_keeps_decrypting() -> None:
    a, b, drops = pair(Suite.AES_CM_128_HMAC_SHA1_32)
    for seq in range(65530, 65545):  # crosses 65535 → 0: the rollover counter must advance
        assert b.unprotect(a.protect(rtp(seq))) == rtp(seq)
    assert not drops


def test_unsupported_records_are_refused_without_the_key() -> None:
    material = bytes(range(30))
    unknown = Crypto(1, "AES_256_CM_HMAC_SHA1_80", (KeyParams(material),))
    with_mki = Crypto(1, Suite.AES_CM_128_HMAC_SHA1_80, (KeyParams(material, mki=(1, 4)),))
    good = new_crypto(1, Suite.AES_CM_128_HMAC_SHA1_80)
    for ours, theirs in ((unknown, good), (good, with_mki)):
        with pytest.raises(ValueError, match="not supported") as caught:
            SrtpContext(ours, theirs, Counter())
        assert material.hex()[:8] not in str(caught.value)


def test_repr_hides_keys() -> None:
    a, _b, _drops = pair(Suite.AEAD_AES_256_GCM)
    text = repr(a) + str(a)
    assert a._ours.material.hex()[:8] not in text
    assert repr(a._ours.material)[:12] not in text
    assert "AEAD_AES_256_GCM" in text
