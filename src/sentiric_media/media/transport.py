"""UDP sockets for RTP: binding a session's port and parsing `host:port` targets."""

from __future__ import annotations

import ipaddress
import socket

from sentiric_media.errors import InvalidArgument

# Room for bursts (a stalled loop, a sender flushing its queue) without kernel drops.
RECEIVE_BUFFER_BYTES = 512 * 1024

Address = tuple[str, int]


def bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to (host, port); raises OSError when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def parse_host_port(text: str, field: str = "rtp_target_addr") -> Address:
    """Parse `1.2.3.4:5000` or `[::1]:5000` into an address tuple, or raise InvalidArgument."""
    value = text.strip()
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise InvalidArgument(f"{field} {text!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidArgument(f"{field} {text!r}: {host!r} is not an IP address") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidArgument(f"{field} {text!r}: port {port_text!r} is not in 1..65535")
    return str(address), int(port_text)


def reachable(family: int, address: Address, text: str) -> Address:
    """`address` in the form a socket of `family` sends to, or InvalidArgument.

    An IPv6 socket reaches IPv4 peers through IPv4-mapped addresses; an IPv4
    socket cannot reach IPv6 peers at all.
    """
    is_v6 = ":" in address[0]
    if family == socket.AF_INET and is_v6:
        raise InvalidArgument(
            f"rtp_target_addr {text!r} is IPv6 but RTP listens on IPv4 (RTP_SERVICE_LISTEN_ADDRESS)"
        )
    if family == socket.AF_INET6 and not is_v6:
        return f"::ffff:{address[0]}", address[1]
    return address


def looks_like_host_port(text: str) -> bool:
    try:
        parse_host_port(text)
    except InvalidArgument:
        return False
    return True


def format_address(address: Address | None) -> str:
    if address is None:
        return ""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
