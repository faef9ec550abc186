"""SDES `a=crypto` values (RFC 4568, with the AEAD suites of RFC 7714): parse, write, choose.

This module owns the syntax of one `a=crypto` value, the four suites we speak
(with their key/salt lengths and pylibsrtp profiles), fresh keys for our side,
and the rule that picks which offered line an answer accepts. Packets are
protected in `media.srtp`; whether a call uses SRTP at all is the caller's.

Key material never reaches a repr, a str or an error message: records hide it
(`field(repr=False)`) and errors name the part that was wrong (tag, suite,
lifetime, ...) but not the key.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from pylibsrtp import Policy

from sentiric_media.media.sdp.records import SdpError


class BadCrypto(SdpError, ValueError):
    """An `a=crypto` value that cannot be read; the message never contains key material."""


class Suite(Enum):
    """A crypto-suite: (SDP name, master key bytes, master salt bytes, pylibsrtp profile)."""

    AEAD_AES_256_GCM = ("AEAD_AES_256_GCM", 32, 12, Policy.SRTP_PROFILE_AEAD_AES_256_GCM)
    AEAD_AES_128_GCM = ("AEAD_AES_128_GCM", 16, 12, Policy.SRTP_PROFILE_AEAD_AES_128_GCM)
    AES_CM_128_HMAC_SHA1_80 = (
        "AES_CM_128_HMAC_SHA1_80",
        16,
        14,
        Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    AES_CM_128_HMAC_SHA1_32 = (
        "AES_CM_128_HMAC_SHA1_32",
        16,
        14,
        Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    )

    def __init__(self, sdp_name: str, key_len: int, salt_len: int, profile: int) -> None:
        self.sdp_name = sdp_name
        self.key_len = key_len
        self.salt_len = salt_len
        self.profile = profile

    @property
    def material_len(self) -> int:
        """Bytes of key||salt in `inline:`."""
        return self.key_len + self.salt_len

    @classmethod
    def named(cls, name: str) -> Suite | None:
        return _BY_NAME.get(name)

    def __str__(self) -> str:
        return self.sdp_name

    def __repr__(self) -> str:
        return f"Suite.{self.name}"


_BY_NAME = {suite.sdp_name: suite for suite in Suite}

# Our preference when no setting says otherwise (CONTRACT.md, MEDIA_SERVICE_SRTP_SUITES).
DEFAULT_SUITES: tuple[Suite, ...] = tuple(Suite)

# A key must last a call. 2^20 packets is 5.8 h at 20 ms ptime (2.9 h at 10 ms), longer
# than any call we expect, and it is the lifetime of RFC 4568's own examples, which real
# devices copy; `media.srtp` still drops packets past the lifetime rather than ignore it.
MIN_LIFETIME = 2**20
MAX_MKI_LENGTH = 128  # RFC 4568 §9.1: mki-length is 1..128 bytes
# RFC 4568 §6.3.6: a replay window hint below 64 is not allowed; libsrtp's limit is 2^15.
MIN_WSH, MAX_WSH = 64, 0x8000
# Session parameters that change what protect/unprotect must do; we cannot honour them.
_UNSUPPORTED_PARAMS = {
    "UNENCRYPTED_SRTP": "unencrypted SRTP is not accepted",
    "UNENCRYPTED_SRTCP": "unencrypted SRTCP is not accepted",
    "UNAUTHENTICATED_SRTP": "unauthenticated SRTP is not accepted",
    "KDR": "a key derivation rate (KDR) is not supported",
}
# Parameters about FEC, which we neither send nor receive: they do not change our packets.
_FEC_PARAMS = ("FEC_ORDER", "FEC_KEY")

_TAG = re.compile(r"[0-9]{1,9}")
# Suite names always hold a '_', which base64 never does: a name we quote cannot be a key.
_SUITE_NAME = re.compile(r"[A-Za-z0-9]*_[A-Za-z0-9_]{1,62}")
# Parts of a line we may quote in errors: too short or of the wrong alphabet to be a key.
_QUOTABLE_METHOD = re.compile(r"[A-Za-z]{1,16}")
_QUOTABLE_PARAM = re.compile(r"[A-Z][A-Z_]{0,23}")
_LIFETIME = re.compile(r"(2\^)?([0-9]{1,20})")
_MAX_EXPONENT = 64  # 2^64 packets: far beyond any suite's own limit (2^48)
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")


@dataclass(frozen=True, slots=True)
class KeyParams:
    """One `inline:<key||salt>[|lifetime][|MKI:length]`; no lifetime: the suite's maximum."""

    material: bytes = field(repr=False)
    lifetime: int | None = None
    mki: tuple[int, int] | None = None  # (value, length in bytes)


@dataclass(frozen=True, slots=True)
class Crypto:
    """One `a=crypto` value; `suite` stays a str when it is not one we know (for messages)."""

    tag: int
    suite: Suite | str
    keys: tuple[KeyParams, ...]
    session_params: tuple[str, ...] = field(default=(), repr=False)  # FEC_KEY holds a key

    @property
    def suite_name(self) -> str:
        return str(self.suite)

    @property
    def material(self) -> bytes:
        """Master key || master salt of the first (usually only) key-params."""
        return self.keys[0].material

    @property
    def lifetime(self) -> int | None:
        return self.keys[0].lifetime

    @property
    def mki(self) -> tuple[int, int] | None:
        return self.keys[0].mki

    @property
    def window_size_hint(self) -> int | None:
        """The `WSH=` replay window the peer asks for (RFC 4568 §6.3.6), or None."""
        for param in self.session_params:
            name, _, value = param.partition("=")
            if name == "WSH" and value.isdigit():
                return int(value)
        return None

    def __str__(self) -> str:
        return f"tag {self.tag} {self.suite_name}"


@dataclass(frozen=True, slots=True)
class Choice:
    """What `choose` decided: `chosen` is (their crypto, our answer) or None.

    `refused` has one entry per offered line that was passed over, in offer
    order, e.g. "tag 1 AES_CM_128_HMAC_SHA1_80: key lifetime 2^10 is below 2^20";
    `message` joins them for a FAILED_PRECONDITION.
    """

    chosen: tuple[Crypto, Crypto] | None
    refused: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if not self.refused:
            return "the offer has no a=crypto line"
        return "no acceptable a=crypto line: " + "; ".join(self.refused)


def parse_crypto(value: str) -> Crypto:
    """Parse `tag 1*WSP suite 1*WSP key-params *(1*WSP session-param)` (RFC 4568 §9.1)."""
    parts = value.split()
    if len(parts) < 3:
        raise BadCrypto("a=crypto needs a tag, a crypto-suite and key-params")
    tag_text, suite_text, keys_text, *params = parts
    if not _TAG.fullmatch(tag_text):
        raise BadCrypto("a=crypto tag is not 1 to 9 digits")
    if not _SUITE_NAME.fullmatch(suite_text):
        raise BadCrypto(f"a=crypto tag {int(tag_text)}: the crypto-suite is not a suite name")
    suite: Suite | str = Suite.named(suite_text) or suite_text
    where = f"a=crypto tag {int(tag_text)} {suite_text}"
    keys = tuple(_parse_key_params(item, suite, where) for item in keys_text.split(";"))
    for param in params:
        _check_session_param(param, where)
    return Crypto(int(tag_text), suite, keys, tuple(params))


def _parse_key_params(text: str, suite: Suite | str, where: str) -> KeyParams:
    method, sep, info = text.partition(":")
    if not sep or method.lower() != "inline":
        # Quote the method only when it cannot be a key (a line without "inline:" may be one).
        shown = repr(method) if sep and _QUOTABLE_METHOD.fullmatch(method) else "(not shown)"
        raise BadCrypto(f"{where}: key method {shown} is not 'inline'")
    key_text, *rest = info.split("|")
    lifetime = mki = None
    for item in rest:
        if _MKI.fullmatch(item):
            if mki is not None:
                raise BadCrypto(f"{where}: more than one MKI in one key-params")
            mki_value, mki_len = (int(x) for x in item.split(":"))
            if not 1 <= mki_len <= MAX_MKI_LENGTH or mki_value >= 256**mki_len:
                raise BadCrypto(f"{where}: MKI {item} does not fit its length (1..128 bytes)")
            mki = (mki_value, mki_len)
        elif match := _LIFETIME.fullmatch(item):
            if lifetime is not None or mki is not None:
                raise BadCrypto(f"{where}: the lifetime must come once, before the MKI")
            # Check the exponent before raising 2 to it: 2^99999999999 would hang the parser.
            number = int(match[2])
            if (number > _MAX_EXPONENT) if match[1] else not 0 < number <= 2**_MAX_EXPONENT:
                raise BadCrypto(f"{where}: key lifetime {item} is out of range")
            lifetime = 2**number if match[1] else number
        else:
            raise BadCrypto(f"{where}: a key-params part is neither a lifetime nor an MKI")
    material = _decode_key(key_text, where)
    if isinstance(suite, Suite) and len(material) != suite.material_len:
        raise BadCrypto(
            f"{where}: key and salt are {len(material)} bytes, the suite needs "
            f"{suite.material_len} ({suite.key_len} + {suite.salt_len})"
        )
    return KeyParams(material, lifetime, mki)


def _decode_key(text: str, where: str) -> bytes:
    # Some devices drop the base64 padding; put it back rather than refuse their key.
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        # binascii's messages quote no input, but do not even pass them on: say what, not which.
        raise BadCrypto(f"{where}: the inline key is not valid base64") from None


def _check_session_param(param: str, where: str) -> None:
    name, sep, value = param.partition("=")
    if name == "WSH" and (not sep or not value.isdigit() or not MIN_WSH <= int(value) <= 2**31):
        raise BadCrypto(f"{where}: WSH is not a window size of 64 or more")
    if name == "KDR" and (not value.isdigit() or int(value) > 24):
        raise BadCrypto(f"{where}: KDR is not 0..24")


def format_crypto(crypto: Crypto) -> str:
    """The `a=crypto` value (no `a=crypto:`); base64 with padding, powers of two as 2^n."""
    keys = ";".join(_format_key(key) for key in crypto.keys)
    return " ".join([str(crypto.tag), crypto.suite_name, keys, *crypto.session_params])


def _format_key(key: KeyParams) -> str:
    text = "inline:" + base64.b64encode(key.material).decode("ascii")
    if key.lifetime is not None:
        text += f"|{_lifetime_text(key.lifetime)}"
    if key.mki is not None:
        text += f"|{key.mki[0]}:{key.mki[1]}"
    return text


def _lifetime_text(lifetime: int) -> str:
    exponent = lifetime.bit_length() - 1
    return f"2^{exponent}" if lifetime == 1 << exponent else str(lifetime)


def new_crypto(tag: int, suite: Suite) -> Crypto:
    """Our side's crypto for `suite`: a fresh key and salt from `secrets`, no lifetime, no MKI."""
    return Crypto(tag, suite, (KeyParams(secrets.token_bytes(suite.material_len)),))


def offer_lines(suites: Sequence[Suite]) -> list[Crypto]:
    """One crypto per suite, in preference order, tags 1..n, each with its own key."""
    return [new_crypto(tag, suite) for tag, suite in enumerate(suites, start=1)]


def refusal(crypto: Crypto, supported: Sequence[Suite]) -> str | None:
    """Why we cannot accept `crypto` (None when we can); RFC 4568 §6.1/§6.3 rules."""
    if not isinstance(crypto.suite, Suite):
        return "crypto-suite not supported"
    if crypto.suite not in supported:
        return "crypto-suite not enabled here"
    if len(crypto.keys) > 1:
        # Several master keys need MKI (or key switching by index), which pylibsrtp lacks.
        return "several master keys in one line are not supported"
    if crypto.mki is not None:
        return "MKI is not supported"
    if crypto.lifetime is not None and crypto.lifetime < MIN_LIFETIME:
        lifetime, minimum = _lifetime_text(crypto.lifetime), _lifetime_text(MIN_LIFETIME)
        return f"key lifetime {lifetime} is below {minimum} packets"
    for param in crypto.session_params:
        name = param.partition("=")[0]
        if name in _UNSUPPORTED_PARAMS:
            return _UNSUPPORTED_PARAMS[name]
        if name != "WSH" and name not in _FEC_PARAMS:
            # RFC 4568 §6.3: refuse what we do not know rather than ignore it.
            shown = repr(name) if _QUOTABLE_PARAM.fullmatch(name) else "(not shown)"
            return f"session parameter {shown} is not supported"
    return None


def choose(offered: Sequence[str], supported: Sequence[Suite] = DEFAULT_SUITES) -> Choice:
    """Accept the first offered `a=crypto` value we can honour, in the offer's order.

    The answer has the same tag and suite and our own fresh key (RFC 4568 §7.1.2).
    Lines that do not parse are refused like the others: one bad line must not
    spoil an offer whose next line is fine.
    """
    refused = []
    for value in offered:
        try:
            theirs = parse_crypto(value)
        except BadCrypto as error:
            refused.append(str(error))
            continue
        reason = refusal(theirs, supported)
        if reason is None:
            assert isinstance(theirs.suite, Suite)
            return Choice((theirs, new_crypto(theirs.tag, theirs.suite)), tuple(refused))
        refused.append(f"{theirs}: {reason}")
    return Choice(None, tuple(refused))


def parse_suites(setting: str) -> tuple[Suite, ...]:
    """The suites of a comma-separated setting (`MEDIA_SERVICE_SRTP_SUITES`), in its order."""
    suites: list[Suite] = []
    for name in (item.strip() for item in setting.split(",")):
        if not name:
            continue
        suite = Suite.named(name.upper())
        if suite is None:
            known = ", ".join(s.sdp_name for s in Suite)
            raise ValueError(f"unknown SRTP suite {name[:40]!r} (known: {known})")
        if suite not in suites:
            suites.append(suite)
    if not suites:
        raise ValueError("the SRTP suite list is empty")
    return tuple(suites)
