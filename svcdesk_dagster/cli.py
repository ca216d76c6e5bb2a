"""The `svcdesk` command: `svcdesk demo`, `svcdesk simulate --port P`, `svcdesk screenshots`, and
the operations `svcdesk dlt ...` and `svcdesk rebuild <asset>`."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from pathlib import Path

from svcdesk_simulator import (
    RATE_LIMIT_HEADER_STYLES,
    Budget,
    VendorSize,
    serve_forever,
)


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
    _add_vendor_condition_arguments(simulate)

    screenshots = commands.add_parser(
        "screenshots",
        help="run the demo, then take the README's pictures of the web UI in headless Chromium",
    )
    screenshots.add_argument("--out", type=Path, default=None, metavar="DIR",
                             help="where the PNGs go (default: docs/screenshots of the project)")
    _add_size_arguments(screenshots)

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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "rebuild":
        return _runbook("rebuild", [args.asset])
    if args.command == "demo":
        from svcdesk_dagster.demo import run_demo

        return run_demo(_size_from(args))
    if args.command == "screenshots":
        return _screenshots(args.out, _size_from(args))
    serve_forever(
        args.port, _size_from(args), args.service_desk_api_key, args.incident_management_api_key,
        latency_ms=args.latency_ms, jitter_ms=_jitter_from(parser, args), budget=_budget_from(parser, args),
        churn_per_minute=args.churn,
    )
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


def _add_vendor_condition_arguments(parser: argparse.ArgumentParser) -> None:
    """`simulate`'s options that make it answer like a distant, rate-limited, busy vendor."""
    parser.add_argument("--latency-ms", type=_non_negative(float), default=0.0, metavar="MS",
                        help="every answer waits this long before it is sent (default 0: none)")
    parser.add_argument("--jitter-ms", type=_non_negative(float), default=0.0, metavar="MS",
                        help="the latency varies by up to this much either way (at most --latency-ms)")
    parser.add_argument("--budget", type=_budget, metavar="N/SECONDS",
                        help="each API key may make N requests per window of SECONDS, then gets 429s (e.g. 1200/60)")
    parser.add_argument("--rate-limit-headers", choices=RATE_LIMIT_HEADER_STYLES,
                        help="how the budget is announced (default ietf: RateLimit-*)")
    parser.add_argument("--churn", type=_non_negative(int), default=0, metavar="N",
                        help="records changed a minute, as other users work (default 0: none)")


def _non_negative(number: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse `type` for a finite `number` (int or float) >= 0."""
    def parse(text: str) -> float:
        try:
            value = number(text)
        except ValueError:
            value = -1
        if not 0 <= value < math.inf:
            raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
        return value
    return parse


def _budget(text: str) -> Budget:
    """`--budget 1200/60`: requests per window and the window's seconds, both positive."""
    requests, _, seconds = text.partition("/")
    try:
        return Budget(int(requests), float(seconds))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected REQUESTS/SECONDS, positive numbers such as 1200/60, got {text!r}"
        ) from None


def _budget_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Budget | None:
    if args.rate_limit_headers is None:
        return args.budget
    if args.budget is None:
        parser.error("--rate-limit-headers needs --budget")
    return dataclasses.replace(args.budget, headers=args.rate_limit_headers)


def _jitter_from(parser: argparse.ArgumentParser, args: argparse.Namespace) -> float:
    if args.jitter_ms > args.latency_ms:
        parser.error("--jitter-ms must not exceed --latency-ms")
    return args.jitter_ms


def _screenshots(out: Path | None, size: VendorSize) -> int:
    from svcdesk_dagster.screenshots import (
        SCREENSHOTS_DIR,
        ScreenshotError,
        take_screenshots,
    )

    try:
        return take_screenshots(out or SCREENSHOTS_DIR, size)
    except ScreenshotError as error:
        print(f"svcdesk screenshots: {error}", file=sys.stderr)
        return 2


def _runbook(command: str, arguments: list[str]) -> int:
    from svcdesk_dagster.runbook import RunbookError, rebuild, run_dlt

    try:
        return run_dlt(arguments) if command == "dlt" else rebuild(arguments[0])
    except RunbookError as error:
        print(f"svcdesk {command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
