"""The command line's spelling: one flag per concept in every command, old spellings as deprecated aliases that
still work, each subcommand's own usage on a bad argument, every flag a message names a real one, and
--method-option checked against the method's declared options."""

from __future__ import annotations

import argparse
import io
import re
import tokenize
from pathlib import Path

import pytest

from toolkit.cli import build_parser, main
from toolkit.cli.flags import DeprecatedAlias

ROOT = Path(__file__).resolve().parents[3]

# concept -> (its one spelling, the commands that take it)
CANONICAL = {
    "shard folder": ("--shards", ("eval", "leaderboard", "train", "animate", "verify", "info")),
    "dataset (its card's name, or the name stored in the runs)": ("--dataset", ("prepare", "leaderboard")),
    "parallel / loader workers": ("--workers", ("prepare", "eval", "train")),
    "optimizer steps of a training run": ("--train-steps", ("train",)),
    "a method's settings (sampling steps, seed, long mode, ...)": ("--method-option", ("eval", "leaderboard",
                                                                                       "animate")),
    "trained model of a method": ("--checkpoint", ("eval", "leaderboard", "animate")),
    "protocol": ("--profile", ("eval", "leaderboard")),
    "results store": ("--results", ("eval", "leaderboard")),
    "torch device": ("--device", ("eval", "leaderboard", "animate")),
}
# (command, old spelling) -> the flag it now stands for: accepted for one release, with a warning
DEPRECATED = {
    ("eval", "--dataset"): "--shards",
    ("train", "--steps"): "--train-steps",
    ("train", "--num-workers"): "--workers",
    ("animate", "--steps"): "--method-option",
    ("animate", "--seed"): "--method-option",
    ("animate", "--long"): "--method-option",
}
# other spellings of the concepts above: no command may take them except as a deprecated alias
SYNONYMS = {"--recipe", "--card", "--shard", "--shard-folder", "--data", "--num-workers", "--jobs", "--n-workers",
            "--steps", "--sampling-steps", "--sample-steps", "--num-steps", "--option", "--method-options",
            "--ckpt", "--protocol", "--profiles", "--result"}
# flags of other programs named in the toolkit's strings (git describe, tensorboard, pip, a benchmark script,
# accelerate), and CSS custom properties of the HTML report
FOREIGN = {"--abbrev", "--always", "--dirty", "--logdir", "--user", "--prefix", "--scan", "--accent", "--best",
           "--best-ink", "--ink", "--line", "--muted", "--paper-line", "--soft"}


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser of the real command line, by its name ("weights fetch" for nested ones)."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found[f"{prefix}{name}"] = sub
                    walk(sub, f"{prefix}{name} ")

    walk(build_parser(), "")
    return found


def flags(parser: argparse.ArgumentParser) -> tuple[set[str], dict[str, DeprecatedAlias]]:
    """The parser's current long flags, and its deprecated ones."""
    current, old = set(), {}
    for action in parser._actions:
        for flag in action.option_strings:
            if isinstance(action, DeprecatedAlias):
                old[flag] = action
            elif flag.startswith("--"):
                current.add(flag)
    return current, old


def test_one_spelling_per_concept_in_every_command():
    parsers = commands()
    for concept, (flag, names) in CANONICAL.items():
        for name in names:
            assert flag in flags(parsers[name])[0], f"{name} has no {flag} ({concept})"
    for name, parser in parsers.items():
        current, old = flags(parser)
        taken = current & SYNONYMS - ({"--dataset"} if name == "leaderboard" else set())
        assert not taken, f"{name} takes {taken}, another spelling of a concept (see CANONICAL)"
        assert {(name, flag): alias.new for flag, alias in old.items()} == {
            k: v for k, v in DEPRECATED.items() if k[0] == name}


@pytest.mark.parametrize("argv, dest, value", [
    (["eval", "--method", "pose-warp", "--dataset", "data/x"], "shards", Path("data/x")),
    (["train", "--method", "m", "--config", "c", "--shards", "s", "--out", "o", "--num-workers", "3"], "workers", 3),
    (["animate", "--method", "m", "--reference", "r", "--pose", "p", "--out", "o.mp4", "--steps", "5",
      "--method-option", "seed=2"], "method_option", ["steps=5", "seed=2"]),
])
def test_an_old_spelling_still_works_and_names_the_new_one(argv, dest, value, capsys):
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1 and "deprecated" in warning
    assert DEPRECATED[(argv[0], next(a for a in argv if (argv[0], a) in DEPRECATED))] in warning


def test_lists_repeat_or_take_commas_and_a_bad_argument_prints_the_subcommands_usage(capsys):
    args = build_parser().parse_args(["eval", "--method", "a,b", "--method", "c", "--profile", "disco,standard",
                                      "--shards", "s"])
    assert args.methods == ["a", "b", "c"] and args.profiles == ["disco", "standard"]
    for argv, usage in ((["eval", "--method", "a", "--shards", "s", "--bogus"], "usage: toolkit eval"),
                        (["weights", "status", "--bogus"], "usage: toolkit weights status"),
                        (["verify"], "usage: toolkit verify"),
                        (["eval", "--method", "a"], "usage: toolkit eval")):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and usage in err and "usage: toolkit [-h]" not in err, argv
    assert "required: --shards" in err and "[--shards" not in err  # still shown as required
    assert build_parser().parse_args(["verify", "--shards", "s"]).shards == Path("s")


def _quoted_flags(folder: Path) -> dict[str, str]:
    """Every --flag inside a string literal of the Python files under `folder` -> a file that names it."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type == tokenize.STRING:
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w-])", tok.string):
                    out.setdefault(flag, str(path.relative_to(ROOT)))
    return out


def test_every_flag_a_message_names_exists():
    known = set().union(*(flags(p)[0] | set(flags(p)[1]) for p in [build_parser(), *commands().values()]))
    quoted = {**_quoted_flags(ROOT / "baselines"), **_quoted_flags(ROOT / "toolkit")}
    missing = {flag: where for flag, where in quoted.items() if flag not in known | FOREIGN}
    assert not missing, f"messages name flags no command takes: {missing}"


def test_method_options_are_declared_typed_and_checked():
    import inspect

    from toolkit.harness.registry import method_class, method_names, method_options

    for name in method_names():  # what a method declares, its constructor takes
        cls = method_class(name)
        assert set(cls.options) <= set(inspect.signature(cls.__init__).parameters), name
    got = method_options(["unianimate", "pose-warp"], ["steps=5", "guidance=2.5", "long=chain",
                                                       "unianimate:first_frame=yes"])
    assert got == {"unianimate": {"steps": 5, "guidance": 2.5, "long": "chain", "first_frame": True},
                   "pose-warp": {}}
    for given, message in ((["stepz=5"], r"no method of this run has an option 'stepz'.*unianimate: steps \(int"),
                           (["unianimate:stepz=5"], r"unianimate has no option 'stepz'; its options: steps"),
                           (["pose-warp:steps=5"], r"pose-warp has no option 'steps'; its options: none"),
                           (["steps=five"], r"steps=five: steps takes an integer"),
                           (["long=loop"], r"long=loop: long is one of windows, chain"),
                           (["steps"], r"give KEY=VALUE"),
                           (["steps=1", "steps=2"], r"steps: given twice")):
        with pytest.raises(ValueError, match=message):
            method_options(["unianimate", "pose-warp"], given)
