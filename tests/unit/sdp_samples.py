"""Real-world SDP offers and codecs without libraries, for the SDP and negotiation tests.

Each offer is written as the product sends it (the line order, the quirks); the
SIP stacks send CRLF, FFmpeg's `-sdp_file` LF only. `OPUS`, `G722` and `G729`
are `Codec`s with the registry's SDP properties whose coders are never built,
so negotiation tests run whether or not libopus or libbcg729 is installed.
"""

from __future__ import annotations

from typing import NoReturn

from sentiric_media.media.codecs import PCMA, PCMU, Codec, MediaFormat
from sentiric_media.media.negotiation import LocalEndpoint


def _no_coder(media_format: MediaFormat) -> NoReturn:
    raise AssertionError(f"negotiation must not build a coder ({media_format.name})")


OPUS = Codec(
    "opus",
    48000,
    48000,
    _no_coder,
    _no_coder,
    sdp_channels=2,
    ptimes=(20, 10, 40, 60),
    fmtp={"useinbandfec": "1"},
)
G722 = Codec("G722", 8000, 16000, _no_coder, _no_coder, static_payload_type=9)
G729 = Codec(
    "G729",
    8000,
    8000,
    _no_coder,
    _no_coder,
    static_payload_type=18,
    fmtp={"annexb": "no"},
)
# MEDIA_SERVICE_CODECS' default order, without G.729.
SUPPORTED = (OPUS, G722, PCMU, PCMA)
# Our side in the negotiation tests: c= address, RTP port, o= session id and version.
LOCAL = LocalEndpoint("203.0.113.10", 40000, 4242, 1)


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def m_lines(text: str) -> list[str]:
    return [line for line in text.split("\r\n") if line.startswith("m=")]


ASTERISK = crlf("""\
v=0
o=- 1734043327 1734043327 IN IP4 192.168.1.10
s=Asterisk
c=IN IP4 192.168.1.10
t=0 0
m=audio 10000 RTP/AVP 0 8 3 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
""")

FREESWITCH = crlf("""\
v=0
o=FreeSWITCH 1734020421 1734020422 IN IP4 10.0.0.5
s=FreeSWITCH
c=IN IP4 10.0.0.5
t=0 0
m=audio 24680 RTP/AVP 102 9 0 8 100 101
a=rtpmap:102 opus/48000/2
a=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=16000; minptime=10
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:100 telephone-event/48000
a=fmtp:100 0-16
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
a=rtcp:24681 IN IP4 10.0.0.5
""")

LINPHONE = crlf("""\
v=0
o=alice 2087 3502 IN IP4 192.168.0.20
s=Talk
c=IN IP4 192.168.0.20
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
""")

CARRIER = crlf("""\
v=0
o=Sonus_UAC 27392 18562 IN IP4 203.0.113.50
s=SIP Media Capabilities
c=IN IP4 203.0.113.51
t=0 0
m=audio 31338 RTP/AVP 18 8 101
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=yes
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=ptime:20
a=silenceSupp:off - - - -
""")

WEBRTC = crlf("""\
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 46243 typ host generation 0
a=ice-ufrag:Oyef
a=ice-pwd:3H6vTpOyTmFK0cvk1kv2bGPw
a=ice-options:trickle
a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F4:70
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream track
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6
""")

AUDIO_VIDEO = crlf("""\
v=0
o=bob 2808844564 2808844564 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 99
a=rtpmap:31 H261/90000
a=rtpmap:99 H264/90000
a=fmtp:99 profile-level-id=42e01f;packetization-mode=1
""")

AUDIO_T38 = crlf("""\
v=0
o=gw 5120 5121 IN IP4 198.51.100.20
s=T.38 gateway
c=IN IP4 198.51.100.20
t=0 0
m=audio 20000 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
m=image 20002 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxDatagram:400
a=T38FaxUdpEC:t38UDPRedundancy
""")

FFMPEG_OPUS = (
    "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=No Name\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "a=tool:libavformat 61.7.100\nm=audio 40000 RTP/AVP 97\nb=AS:64\n"
    "a=rtpmap:97 opus/48000/2\na=fmtp:97 sprop-stereo=1\n"
)

FFMPEG_G722 = (
    "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=No Name\nc=IN IP4 127.0.0.1\nt=0 0\n"
    "a=tool:libavformat 61.7.100\nm=audio 5004 RTP/AVP 9\nb=AS:64\na=rtpmap:9 G722/8000\n"
)

IPV6 = crlf("""\
v=0
o=- 1 1 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:DB8:0:0::10
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
""")


def simple_offer(
    body: str, *, connection: str = "IN IP4 192.0.2.1", port: int = 5000, formats: str = "0 8"
) -> str:
    """A minimal PCMU/PCMA offer with `body` (attribute lines) appended to its m-line."""
    return crlf(
        f"v=0\no=- 7 7 IN IP4 192.0.2.1\ns=-\nc={connection}\nt=0 0\n"
        f"m=audio {port} RTP/AVP {formats}\n{body}"
    )
