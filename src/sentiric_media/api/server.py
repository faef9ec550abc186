"""The gRPC server: media service, standard health service, TLS or plaintext."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sentiric_media.api.servicer import MediaServicer
from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.config import Settings

log = logging.getLogger(__name__)

SERVICE_NAME = "sentiric.media.v1.MediaService"


async def start_grpc_server(
    settings: Settings, servicer: MediaServicer
) -> tuple[grpc.aio.Server, int]:
    """Start serving; returns the server and the port it bound (useful when 0 was asked)."""
    # data: URIs up to the configured limit arrive base64-encoded (4/3 larger).
    max_message = settings.max_data_uri_bytes * 4 // 3 + 1024 * 1024
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    media_pb2_grpc.add_MediaServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{_host(settings.listen_address)}:{settings.grpc_port}"
    if settings.tls_enabled:
        assert settings.cert_path is not None
        assert settings.key_path is not None
        assert settings.ca_path is not None
        credentials = grpc.ssl_server_credentials(
            [(settings.key_path.read_bytes(), settings.cert_path.read_bytes())],
            root_certificates=settings.ca_path.read_bytes(),
            require_client_auth=True,
        )
        port = server.add_secure_port(address, credentials)
        log.info("gRPC with mutual TLS on %s", address)
    else:
        port = server.add_insecure_port(address)
        log.warning(
            "gRPC without TLS on %s (set MEDIA_SERVICE_CERT_PATH, MEDIA_SERVICE_KEY_PATH "
            "and GRPC_TLS_CA_PATH for mutual TLS)",
            address,
        )
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
