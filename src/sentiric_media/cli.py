"""The `sentiric-media` command: `serve`, `demo` and `inspect`."""

from __future__ import annotations

import argparse
import os
import sys

# One service process per core: BLAS must not start threads of its own for the
# small matrix products of the media path.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import uvloop

from sentiric_media.config import SettingsError, load_settings
from sentiric_media.observability.logging import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentiric-media", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the media service (settings from the environment)")
    demo = commands.add_parser("demo", help="act as a phone against a running service")
    demo.add_argument("--grpc", default="127.0.0.1:13031", help="service gRPC address")
    demo.add_argument("--seconds", type=float, default=4.0, help="how long the phone talks")
    demo.add_argument(
        "--codec",
        default="pcmu",
        choices=("pcmu", "pcma", "g722", "opus", "g729"),
        help="the codec the phone offers by SDP (NegotiateSdp) and talks",
    )
    inspect = commands.add_parser("inspect", help="show each party's speech in a recording")
    inspect.add_argument("file", help="a recording (WAV, FLAC, ...)")
    inspect.add_argument("--png", help="also draw the waveform with the segments shaded")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve()
    if args.command == "demo":
        from sentiric_media.tools.demo import run_demo

        return uvloop.run(run_demo(args.grpc, args.seconds, args.codec))
    from sentiric_media.tools.inspect import run_inspect

    return run_inspect(args.file, args.png)


def _serve() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"sentiric-media: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.env == "production", settings.log_level)
    from sentiric_media.app import serve

    try:
        uvloop.run(serve(settings))
    except OSError as exc:
        print(f"sentiric-media: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
