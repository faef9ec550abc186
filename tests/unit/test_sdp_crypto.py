"""SDES a=crypto values (media/sdp/crypto): RFC 4568 grammar, suites, choice, no key in messages."""

from __future__ import annotations

import base64
import itertools

import pytest

from sentiric_media.errors import InvalidArgument
from sentiric_media.media.sdp.crypto import (
    DEFAULT_SUITES,
    MIN_LIFETIME,
    BadCrypto,
    Crypto,
    KeyParams,
    Suite,
    choose,
    format_crypto,
    new_crypto,
    offer_lines,
    parse_crypto,
    parse_suites,
)

RFC_KEY = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"  # RFC 4568 §4 example, 30 bytes
RFC_LINE = f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:32"
KEY30 = base64.b64encode(bytes(range(30))).decode()
KEY28 = base64.b64encode(bytes(range(28))).decode()
KEY44 = base64.b64encode(bytes(range(44))).decode()


def key_fragments(text: str) -> set[str]:
    """Every 8-character piece of a base64 key: none may show up in a message."""
    return {text[i : i + 8] for i in range(len(text) - 7)}


def assert_no_key(message: str, *keys: str) -> None:
    for key in keys:
        leaked = [piece for piece in key_fragments(key) if piece in message]
        assert not leaked, f"key material in {message!r}"


def test_rfc4568_example_parses_and_round_trips() -> None:
    crypto = parse_crypto(RFC_LINE)
    assert crypto.tag == 1
    assert crypto.suite is Suite.AES_CM_128_HMAC_SHA1_80
    assert crypto.material == base64.b64decode(RFC_KEY)
    assert crypto.lifetime == 2**20
    assert crypto.mki == (1, 32)
    assert crypto.session_params == ()
    assert format_crypto(crypto) == RFC_LINE


@pytest.mark.parametrize(
    "line",
    [
        f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY30}",
        f"2 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^31",
        f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1000000",
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|7:4",
        f"5 AEAD_AES_128_GCM inline:{KEY28}",
        f"6 AEAD_AES_256_GCM inline:{KEY44}|2^40 WSH=128",
        f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20|1:4;inline:{KEY30}|2^20|2:4"
        " FEC_ORDER=FEC_SRTP",
        f"8 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} UNENCRYPTED_SRTCP KDR=1",
        f"9 F8_128_HMAC_SHA1_80 inline:{KEY30}|2^20",
    ],
)
def test_round_trip(line: str) -> None:
    assert format_crypto(parse_crypto(line)) == line


def test_lifetimes_decimal_and_power() -> None:
    assert parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^31").lifetime == 2**31
    assert parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1000").lifetime == 1000
    assert parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}").lifetime is None


def test_several_key_params_and_session_params() -> None:
    line = f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20|1:4;inline:{KEY30}|2^20|2:4 WSH=256"
    crypto = parse_crypto(line)
    assert [key.mki for key in crypto.keys] == [(1, 4), (2, 4)]
    assert crypto.session_params == ("WSH=256",)
    assert crypto.window_size_hint == 256


def test_tabs_and_repeated_spaces_separate_fields() -> None:
    crypto = parse_crypto(f"1\t AES_CM_128_HMAC_SHA1_80  inline:{KEY30}\tWSH=64")
    assert crypto.suite is Suite.AES_CM_128_HMAC_SHA1_80
    assert crypto.window_size_hint == 64


def test_missing_base64_padding_is_tolerated() -> None:
    assert KEY28.endswith("=")
    crypto = parse_crypto(f"1 AEAD_AES_128_GCM inline:{KEY28.rstrip('=')}")
    assert crypto.material == bytes(range(28))
    assert format_crypto(crypto).endswith(KEY28)  # we write the padding back


def test_unknown_suite_is_kept_as_its_name() -> None:
    crypto = parse_crypto(f"3 AES_256_CM_HMAC_SHA1_80 inline:{KEY44}")
    assert crypto.suite == "AES_256_CM_HMAC_SHA1_80"
    assert crypto.suite_name == "AES_256_CM_HMAC_SHA1_80"


@pytest.mark.parametrize(
    ("line", "part"),
    [
        ("1 AES_CM_128_HMAC_SHA1_80", "needs a tag"),
        (f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "tag"),
        (f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}", "tag"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30[:-4]}!!!!", "base64"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY28}", "28 bytes"),
        (f"1 AEAD_AES_256_GCM inline:{KEY30}", "needs 44"),
        (f"1 AES_CM_128_HMAC_SHA1_80 uri:{KEY30}", "'uri'"),
        (f"1 AES_CM_128_HMAC_SHA1_80 {KEY30}", "key method"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^99999999999", "lifetime"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|0", "lifetime"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1:200", "MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|300:1", "MKI"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|1:4|2^20", "lifetime"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|{KEY30}", "neither"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} WSH=10", "WSH"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} KDR=99", "KDR"),
        (f"1 {KEY30} inline:{KEY30}", "suite"),
    ],
)
def test_malformed_lines_name_the_part_without_the_key(line: str, part: str) -> None:
    with pytest.raises(BadCrypto) as caught:
        parse_crypto(line)
    assert part in str(caught.value)
    assert_no_key(str(caught.value), KEY30, KEY28)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, InvalidArgument)  # becomes INVALID_ARGUMENT at the API


def test_mutated_lines_never_leak_key_material() -> None:
    # Shift fields around so the key lands where the tag, suite or a parameter should be.
    fields = ["1", "AES_CM_128_HMAC_SHA1_80", f"inline:{KEY30}", KEY30, f"{KEY30}|2^20"]
    for count in (1, 2, 3, 4):
        for combo in itertools.permutations(fields, count):
            line = " ".join(combo)
            try:
                crypto = parse_crypto(line)
            except BadCrypto as error:
                assert_no_key(str(error), KEY30)
                continue
            assert_no_key(repr(crypto) + str(crypto), KEY30)
            assert_no_key(choose([line]).message, KEY30)


def test_repr_and_str_hide_the_key() -> None:
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY30} FEC_KEY=inline:{KEY30}")
    text = repr(crypto) + str(crypto) + repr(crypto.keys) + repr(choose([format_crypto(crypto)]))
    assert_no_key(text, KEY30)
    assert bytes(range(30)).hex()[:16] not in text
    assert repr(bytes(range(30)))[:20] not in text


def test_suites_know_their_lengths() -> None:
    assert [s.sdp_name for s in DEFAULT_SUITES] == [
        "AEAD_AES_256_GCM",
        "AEAD_AES_128_GCM",
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
    ]
    assert Suite.AEAD_AES_256_GCM.material_len == 32 + 12
    assert Suite.AEAD_AES_128_GCM.material_len == 16 + 12
    assert Suite.AES_CM_128_HMAC_SHA1_80.material_len == 16 + 14
    assert Suite.AES_CM_128_HMAC_SHA1_32.material_len == 16 + 14
    assert len({s.profile for s in Suite}) == 4


def test_new_crypto_is_fresh_and_parses_back() -> None:
    first, second = new_crypto(1, Suite.AEAD_AES_256_GCM), new_crypto(1, Suite.AEAD_AES_256_GCM)
    assert first.material != second.material
    assert len(first.material) == 44
    assert parse_crypto(format_crypto(first)) == first


def test_offer_lines_lists_every_suite_with_its_own_key() -> None:
    lines = offer_lines(DEFAULT_SUITES)
    assert [(c.tag, c.suite) for c in lines] == list(enumerate(DEFAULT_SUITES, start=1))
    assert len({c.material for c in lines}) == 4
    assert all(parse_crypto(format_crypto(c)) == c for c in lines)


def line(tag: int, suite: Suite, extra: str = "") -> str:
    material = base64.b64encode(bytes(suite.material_len)).decode()
    return f"{tag} {suite} inline:{material}{extra}"


def test_choose_takes_the_first_supported_line_of_the_offer() -> None:
    offer = [line(1, Suite.AES_CM_128_HMAC_SHA1_80), line(2, Suite.AEAD_AES_256_GCM)]
    choice = choose(offer)
    assert choice.chosen is not None
    theirs, ours = choice.chosen
    assert (theirs.tag, theirs.suite) == (1, Suite.AES_CM_128_HMAC_SHA1_80)
    assert (ours.tag, ours.suite) == (1, Suite.AES_CM_128_HMAC_SHA1_80)
    assert ours.material != theirs.material
    assert (ours.lifetime, ours.mki, ours.session_params) == (None, None, ())
    assert choice.refused == ()


def test_choose_respects_the_supported_setting() -> None:
    offer = [line(1, Suite.AES_CM_128_HMAC_SHA1_32), line(2, Suite.AEAD_AES_128_GCM)]
    choice = choose(offer, supported=(Suite.AEAD_AES_128_GCM,))
    assert choice.chosen is not None
    assert choice.chosen[1].tag == 2
    assert choice.refused == ("tag 1 AES_CM_128_HMAC_SHA1_32: crypto-suite not enabled here",)


def test_choose_collects_every_reason_in_offer_order() -> None:
    suite = Suite.AES_CM_128_HMAC_SHA1_80
    offer = [
        f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY44}",
        line(2, suite, "|2^20|1:4"),
        line(3, suite, "|2^10"),
        line(4, suite) + " UNENCRYPTED_SRTP",
        line(5, suite) + " UNENCRYPTED_SRTCP",
        line(6, suite) + " UNAUTHENTICATED_SRTP",
        line(7, suite) + " KDR=0",
        line(8, suite) + " NEW_PARAM=1",
        f"9 AES_CM_128_HMAC_SHA1_80 inline:{KEY28}",
        f"10 AES_CM_128_HMAC_SHA1_80 inline:{KEY30}|2^20;inline:{KEY30}|2^20",
    ]
    choice = choose(offer)
    assert choice.chosen is None
    reasons = choice.refused
    assert len(reasons) == 10
    expected = [
        "tag 1 AES_256_CM_HMAC_SHA1_80: crypto-suite not supported",
        "tag 2 AES_CM_128_HMAC_SHA1_80: MKI is not supported",
        "tag 3 AES_CM_128_HMAC_SHA1_80: key lifetime 2^10 is below 2^20 packets",
        "tag 4 AES_CM_128_HMAC_SHA1_80: unencrypted SRTP is not accepted",
        "tag 5 AES_CM_128_HMAC_SHA1_80: unencrypted SRTCP is not accepted",
        "tag 6 AES_CM_128_HMAC_SHA1_80: unauthenticated SRTP is not accepted",
        "tag 7 AES_CM_128_HMAC_SHA1_80: a key derivation rate (KDR) is not supported",
        "tag 8 AES_CM_128_HMAC_SHA1_80: session parameter 'NEW_PARAM' is not supported",
    ]
    assert list(reasons[:8]) == expected
    assert "28 bytes" in reasons[8]
    assert "several master keys" in reasons[9]
    assert choice.message.startswith("no acceptable a=crypto line: tag 1 AES_256_CM_HMAC_SHA1_80")
    assert_no_key(choice.message, KEY30, KEY28, KEY44)


def test_choose_skips_bad_lines_but_takes_a_good_later_one() -> None:
    offer = [
        "garbage",
        line(2, Suite.AES_CM_128_HMAC_SHA1_80, "|2^10"),
        line(3, Suite.AEAD_AES_128_GCM),
    ]
    choice = choose(offer)
    assert choice.chosen is not None
    assert choice.chosen[1].tag == 3
    assert len(choice.refused) == 2


def test_minimum_lifetime_is_accepted_and_fec_and_wsh_are_fine() -> None:
    suite = Suite.AES_CM_128_HMAC_SHA1_80
    exponent = MIN_LIFETIME.bit_length() - 1
    offer = [line(1, suite, f"|2^{exponent}") + " WSH=512 FEC_ORDER=FEC_SRTP"]
    assert choose(offer).chosen is not None
    assert choose([line(1, suite, "|2^31")]).chosen is not None


def test_choose_with_no_lines() -> None:
    assert choose([]) == choose([])  # records compare by value
    assert choose([]).chosen is None
    assert choose([]).message == "the offer has no a=crypto line"


def test_parse_suites() -> None:
    setting = "AEAD_AES_256_GCM,AEAD_AES_128_GCM,AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32"
    assert parse_suites(setting) == DEFAULT_SUITES
    assert parse_suites(" aes_cm_128_hmac_sha1_80 , AEAD_AES_128_GCM,") == (
        Suite.AES_CM_128_HMAC_SHA1_80,
        Suite.AEAD_AES_128_GCM,
    )
    with pytest.raises(ValueError, match="AES_256_CM_HMAC_SHA1_80"):
        parse_suites("AEAD_AES_128_GCM,AES_256_CM_HMAC_SHA1_80")
    with pytest.raises(ValueError, match="empty"):
        parse_suites(" , ")


def test_records_are_immutable() -> None:
    crypto = Crypto(1, Suite.AEAD_AES_128_GCM, (KeyParams(bytes(28)),))
    with pytest.raises(AttributeError):
        crypto.tag = 2  # type: ignore[misc]
