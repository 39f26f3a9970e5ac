"""``imvae reproduce TABLE [--quick] [--seeds N] [--out DIR] [--force] [--status] [--data-root DIR]``.

TABLE is one of table2, table3, table4, table5, figure3, or ``all`` (each in turn). Every
experiment writes ``<out>/<TABLE>.md``, ``summary.json`` and ``runs/*.json`` (default out:
``runs/experiments/<TABLE>[-quick]``). Heavy modules are imported inside the handler.
"""

from __future__ import annotations

import argparse
import sys
import time

EXPERIMENTS = ("table2", "table3", "table4", "table5", "figure3")


def register(subparsers: argparse._SubParsersAction) -> None:
    from experiments.common import add_arguments

    parser = subparsers.add_parser(
        "reproduce",
        help="reproduce a table or figure of the paper (our numbers beside the paper's)",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument("table", choices=(*EXPERIMENTS, "all"), help="which experiment")
    add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import importlib

    from experiments.common import options
    from experiments.spec import SpecError

    names = EXPERIMENTS if args.table == "all" else (args.table,)
    for name in names:
        module = importlib.import_module(f"experiments.{name}")
        out = args.out / name if (args.out is not None and len(names) > 1) else args.out
        started = time.perf_counter()
        try:
            path = module.reproduce(**{**options(args), "out": out})
        except SpecError as error:
            print(f"imvae reproduce {name}: error: {error}", file=sys.stderr)
            return 2
        if args.status:
            print(path.read_text())
        print(f"{name}: {path} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0
