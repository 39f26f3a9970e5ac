"""``imvae``: one command line for every stage (prepare | audit | psg | info | train | evaluate | run | bench | reproduce).

Each stage's package registers its own sub-commands through a ``register(subparsers)``
function in its ``cli`` module; those modules import JAX lazily inside their handlers so
``imvae --help`` stays instant. A handler returns a process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# modules that contribute sub-commands, in the order they appear in --help
COMMAND_MODULES = (
    "imvae_jax.data.cli",  # prepare, audit
    "imvae_jax.psg.cli",  # psg
    "imvae_jax.model.cli",  # info
    "imvae_jax.train.cli",  # train, evaluate, run
    "experiments.cli",  # reproduce
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imvae",
        description="IM-VAE cross-domain sequential recommendation in JAX.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that stage is not installed in this checkout
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``imvae`` program. Run from the command line (``argv=None``) it first re-executes
    itself with huge pages for malloc and keeps compiled programs on disk (:mod:`imvae_jax.runtime`;
    ``IMVAE_HUGE_PAGES=0`` / ``IMVAE_XLA_CACHE=0`` opt out)."""
    if argv is None:
        from imvae_jax.runtime import use_compilation_cache, use_huge_pages

        use_huge_pages()
        use_compilation_cache()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
