"""Name -> object lookup for everything that is a plug-in: methods (with their recipes and artifacts), artifacts.

One mechanism: Python entry points (groups ``toolkit.methods``: one package description per method, see
toolkit/package.py; ``toolkit.artifacts``: the toolkit's own weights declarations)
declared by any installed package, including ours (``pyproject.toml``), plus a
direct ``package.module:Attribute`` spec for a user's own code that is importable
but not installed as a plug-in. A plug-in that fails to import is an error that
names it, never a silent skip.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

GROUPS = ("toolkit.methods", "toolkit.artifacts")


class PluginError(ValueError):
    """A name that is not registered, or a registered plug-in that cannot be loaded."""


def names(group: str) -> list[str]:
    """Registered plug-in names of one group, sorted."""
    return sorted({ep.name for ep in entry_points(group=group)})


def _load_spec(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"{spec}: cannot import module {module_name!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"{spec}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def resolve(spec: str) -> Any:
    """The object a ``package.module:Attribute`` spec names (a PluginError says what is missing)."""
    if ":" not in spec:
        raise PluginError(f"{spec!r}: give package.module:Attribute")
    return _load_spec(spec)


def load(group: str, name: str) -> Any:
    """The object registered as `name` in `group`, or the object a ``pkg.module:Attr`` spec names."""
    if ":" in name:
        return _load_spec(name)
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        known = ", ".join(names(group)) or "none"
        raise PluginError(f"unknown {group.split('.')[-1][:-1]} {name!r}; registered: {known} "
                          "(or give package.module:Class for your own)")
    if len({ep.value for ep in found}) > 1:
        raise PluginError(f"{name!r} is registered twice in {group}: {', '.join(ep.value for ep in found)}")
    try:
        return found[0].load()
    except Exception as exc:  # a broken plug-in is reported by name, with its error
        raise PluginError(f"{group} plug-in {name!r} ({found[0].value}) failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc
