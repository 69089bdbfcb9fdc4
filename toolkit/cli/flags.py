"""What every subcommand's parser shares: one spelling per concept, the old spellings as deprecated aliases,
one list convention, and errors printed with the subcommand's own usage.

Lists are repeatable flags whose values may also be comma-separated (``--profile a,b`` is ``--profile a
--profile b``); ``--method-option`` is repeatable only, since a value may hold a comma.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

Check = Callable[["SubcommandParser", argparse.Namespace], None]


class SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an unrecognised argument is its own error, printed with its own usage (argparse
    would leave it to the top-level parser); the checks in `after_parse` run on its parsed arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_parse: list[Check] = []
        self.required_later: list[argparse.Action] = []   # required, checked after parsing (see deprecated_alias)

    def _shown_required(self, format: Callable[[], str]) -> str:
        """Usage and help show a flag checked after parsing as required, as it is."""
        for action in self.required_later:
            action.required = True
        try:
            return format()
        finally:
            for action in self.required_later:
                action.required = False

    def format_usage(self) -> str:
        return self._shown_required(super().format_usage)

    def format_help(self) -> str:
        return self._shown_required(super().format_help)

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        for check in self.after_parse:
            check(self, namespace)
        return namespace, extras


def warn_deprecated(old: str, new: str) -> None:
    """The one-line warning an old spelling prints."""
    print(f"warning: {old} is deprecated and goes in the next release; use {new}", file=sys.stderr)


class DeprecatedAlias(argparse.Action):
    """An old spelling of a flag: warns (naming the new spelling) and then acts as the new flag."""

    def __init__(self, option_strings: list[str], dest: str, target: argparse.Action, new: str,
                 template: str | None = None, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.target, self.new, self.template = target, new, template

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        shown = f"{self.new} {self.template.format('VALUE')}" if self.template else self.new
        warn_deprecated(str(option_string), shown)
        self.target(parser, namespace, self.template.format(values) if self.template else values, self.new)


def _require_after_parse(parser: SubcommandParser, action: argparse.Action, old: str) -> None:
    """A required flag that gained an alias: argparse would count only the new spelling as given."""
    action.required = False
    parser.required_later.append(action)

    def check(p: SubcommandParser, ns: argparse.Namespace) -> None:
        if getattr(ns, action.dest, None) is None:
            p.error(f"the following arguments are required: {action.option_strings[0]}")

    parser.after_parse.append(check)


def deprecated_alias(parser: SubcommandParser, old: str, new: str, template: str | None = None) -> None:
    """Accept `old` for one release as a spelling of `parser`'s flag `new`, with a one-line warning naming `new`.

    `template` (e.g. ``"steps={}"``) rewrites the old flag's value into the new flag's, for an old flag that became
    one KEY=VALUE of a list flag."""
    target = parser._option_string_actions[new]
    if target.required:
        _require_after_parse(parser, target, old)
    parser.add_argument(old, action=DeprecatedAlias, target=target, new=new, template=template, dest=target.dest,
                        nargs=None if template else target.nargs, type=None if template else target.type,
                        choices=None if template else target.choices, metavar=target.metavar,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


class ListAction(argparse.Action):
    """A list flag: repeatable, and each value may hold several, comma-separated."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items += [v.strip() for v in str(values).split(",") if v.strip()]
        setattr(namespace, self.dest, items)


def add_list(parser: argparse.ArgumentParser, flag: str, **kwargs: Any) -> argparse.Action:
    """A list flag (see `ListAction`); its help says it repeats."""
    kwargs["help"] = kwargs.get("help", "") + " (repeatable, or comma-separated)"
    return parser.add_argument(flag, action=ListAction, **kwargs)


def add_shards(parser: SubcommandParser, help: str = "shard folder made by `toolkit prepare`",
               required: bool = True, positional: str | None = None) -> None:
    """The shard folder, `--shards` in every command; with `positional` (its metavar) it may also come first
    without the flag, as in ``toolkit verify data/shards/synthetic``."""
    if positional is None:
        parser.add_argument("--shards", type=Path, required=required, metavar="SHARDS", help=help)
        return
    parser.add_argument("shards_positional", nargs="?", type=Path, metavar=positional, help=f"{help} (or --shards)")
    parser.add_argument("--shards", type=Path, metavar="SHARDS", help="the same, as a flag")

    def merge(p: SubcommandParser, ns: argparse.Namespace) -> None:
        given = ns.__dict__.pop("shards_positional", None)
        if given is not None and ns.shards is not None and given != ns.shards:
            p.error(f"two shard folders given: {given} and --shards {ns.shards}")
        ns.shards = ns.shards if ns.shards is not None else given
        if required and ns.shards is None:
            p.error(f"the following arguments are required: {positional} (or --shards)")

    parser.after_parse.append(merge)


def add_method_option(parser: argparse.ArgumentParser, scope: str) -> None:
    """``--method-option [METHOD:]KEY=VALUE``, repeatable; `scope` says which methods it reaches."""
    parser.add_argument("--method-option", action="append", dest="method_option", default=[],
                        metavar="[METHOD:]KEY=VALUE",
                        help=f"a setting of the method (repeatable): {scope}; KEY is one the method declares "
                        "(e.g. unianimate: steps, guidance, seed, long, window, overlap); a wrong key or value is "
                        "an error listing them. Recorded in the run's provenance")
