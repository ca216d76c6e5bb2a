"""The `svcdesk` command: `svcdesk demo` and `svcdesk simulate --port P`."""

from __future__ import annotations

import argparse
import sys


def _add_size_arguments(parser: argparse.ArgumentParser, tickets: int, incidents: int, services: int) -> None:
    parser.add_argument("--tickets", type=int, default=tickets, help="tickets the simulator holds")
    parser.add_argument("--incidents", type=int, default=incidents, help="incidents it holds")
    parser.add_argument("--services", type=int, default=services, help="services it holds")
    parser.add_argument("--seed", type=int, default=42, help="seed of the simulator's data")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svcdesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="load the bundled simulator's data into DuckDB through Dagster and report it"
    )
    _add_size_arguments(demo, tickets=1_000, incidents=500, services=25)

    simulate = commands.add_parser("simulate", help="serve the bundled API simulator until stopped")
    simulate.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    simulate.add_argument("--service-desk-api-key", default="sd-local-key")
    simulate.add_argument("--incident-management-api-key", default="im-local-key")
    _add_size_arguments(simulate, tickets=1_000, incidents=500, services=25)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from svcdesk_dagster.demo import DemoSize, run_demo

        return run_demo(DemoSize(args.tickets, args.incidents, args.services, args.seed))
    from svcdesk_dagster.simulator import serve_forever

    serve_forever(
        port=args.port,
        tickets=args.tickets,
        incidents=args.incidents,
        services=args.services,
        seed=args.seed,
        service_desk_api_key=args.service_desk_api_key,
        incident_management_api_key=args.incident_management_api_key,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
