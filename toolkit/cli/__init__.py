"""The ``toolkit`` command line: a thin layer that parses arguments and calls the library.

Each command group lives in its own module with a ``register(subparsers)``
function; heavy imports happen inside the command functions so ``--help`` is fast.
The subcommands' parsers are :class:`~toolkit.cli.flags.SubcommandParser`: a bad
argument is reported with the subcommand's own usage. One spelling per concept
(the table is in README.md, "Command line"); old spellings are deprecated aliases.
"""

from __future__ import annotations

import argparse
import os
import sys

from toolkit import __version__
from toolkit.cli.flags import SubcommandParser
from toolkit.plugins import Registry

# The command groups: each module's register(subparsers) adds its subcommands, in the order --help lists them.
COMMANDS = Registry("command group", {
    "data": "toolkit.cli.data:register",
    "weights": "toolkit.cli.weights:register",
    "evaluate": "toolkit.cli.evaluate:register",
    "leaderboard": "toolkit.cli.leaderboard:register",
    "train": "toolkit.cli.train:register",
    "animate": "toolkit.cli.animate:register",
})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolkit",
        description="Human image animation toolkit: prepare datasets into Parquet shards, train and run "
        "reference models, "
        "manage pretrained weights, benchmark methods and render leaderboards.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'toolkit COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"toolkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=SubcommandParser)
    for name in COMMANDS:  # a command module that fails to import is an error naming it, never skipped
        COMMANDS.get(name)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only folder: the message names the file; finished work is kept
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
