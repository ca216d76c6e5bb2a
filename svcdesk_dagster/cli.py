"""The `svcdesk` command: `svcdesk demo`, `svcdesk simulate --port P`, and the operations
`svcdesk dlt ...` and `svcdesk rebuild <asset>`."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from svcdesk_simulator import VendorSize, serve_forever


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="svcdesk", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="load the bundled simulator's data into DuckDB through Dagster and report it"
    )
    _add_size_arguments(demo)

    simulate = commands.add_parser("simulate", help="serve the bundled API simulator until stopped")
    simulate.add_argument("--port", type=int, required=True, help="loopback port to listen on")
    simulate.add_argument("--service-desk-api-key", default="sd-local-key")
    simulate.add_argument("--incident-management-api-key", default="im-local-key")
    _add_size_arguments(simulate)

    dlt_cli = commands.add_parser(
        "dlt",
        help="dlt's CLI on the runs' destination and pipeline folders (`svcdesk dlt pipeline "
        "svcdesk_service_desk info`)",
    )
    dlt_cli.add_argument("arguments", nargs=argparse.REMAINDER, help="what to pass to `dlt`")

    rebuild = commands.add_parser(
        "rebuild", help="drop an asset's tables and window, then sync it again from the start"
    )
    rebuild.add_argument("asset", help="tickets, incidents or services")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["dlt"]:
        # Everything after `dlt` is dlt's, options included (`-y`): argparse would claim them.
        return _runbook("dlt", argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "rebuild":
        return _runbook("rebuild", [args.asset])
    if args.command == "demo":
        from svcdesk_dagster.demo import run_demo

        return run_demo(_size_from(args))
    serve_forever(args.port, _size_from(args), args.service_desk_api_key, args.incident_management_api_key)
    return 0


def _add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field of `VendorSize` (`--tickets`, `--seed`, ...), with its default and help:
    the sizes and their defaults are written only there."""
    for field in dataclasses.fields(VendorSize):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=type(field.default),
            default=field.default,
            help=field.metadata["help"],
        )


def _size_from(args: argparse.Namespace) -> VendorSize:
    return VendorSize(**{field.name: getattr(args, field.name) for field in dataclasses.fields(VendorSize)})


def _runbook(command: str, arguments: list[str]) -> int:
    from svcdesk_dagster.runbook import RunbookError, rebuild, run_dlt

    try:
        return run_dlt(arguments) if command == "dlt" else rebuild(arguments[0])
    except RunbookError as error:
        print(f"svcdesk {command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
