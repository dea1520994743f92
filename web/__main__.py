"""Command line: ``python -m web token --role operator --sub alice [--ttl 3600]``, and
``python -m web gateway`` (the HTTP ingest gateway, :mod:`web.gateway`).

Prints a bearer token that the API configured by the same ``HEALTHMATE_*`` environment
accepts. With ``HEALTHMATE_DEV_MODE=true`` and no ``HEALTHMATE_API_JWT_SECRET`` it signs
with the fixed development secret; RS256 needs ``--private-key PEM_FILE``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from web.auth import ROLES, mint_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web", description="HealthMate API tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    token = commands.add_parser("token", help="mint a bearer token for local use")
    token.add_argument("--role", action="append", choices=ROLES, required=True,
                       help="a role to grant (repeat for several)")
    token.add_argument("--sub", required=True, help="the subject (who is calling)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    token.add_argument("--private-key", type=Path, help="RS256 private key, PEM file")
    commands.add_parser("gateway", help="run the HTTP ingest gateway (HEALTHMATE_GATEWAY_* settings)")
    opts = parser.parse_args(argv)
    if opts.command == "gateway":
        return _gateway()
    if opts.ttl <= 0:
        parser.error("--ttl must be positive")

    from streams.cli import fail, load_settings

    settings = load_settings()
    try:
        private_key = opts.private_key.read_text() if opts.private_key else None
    except OSError as exc:
        fail(f"cannot read --private-key {opts.private_key}: {exc.strerror}; give the path of an RS256 "
             "private key in PEM")
    try:
        print(mint_token(settings, subject=opts.sub, roles=opts.role, ttl_s=opts.ttl,
                         private_key=private_key))
    except ValueError as exc:
        fail(str(exc))
    return 0


def _gateway() -> int:
    from streams.cli import load_settings
    from streams.logs import configure_tool_logging
    from web.gateway.serve import serve

    settings = load_settings()
    configure_tool_logging(settings.log_format, settings.log_level)
    serve(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
