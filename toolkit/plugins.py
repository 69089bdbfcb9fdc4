"""Name -> thing lookup: one small :class:`Registry` for every table of the toolkit that maps a name to code.

The annotation backends, the source adapters, the learned metrics, the CLI command groups, the methods and the
artifact declarations are each a Registry. An entry is the object itself or a ``package.module:Attribute`` spec,
imported only when asked for, so building a table imports nothing heavy. A registry may also be backed by a
Python entry-point group (``toolkit.methods``: one package description per method, see toolkit/package.py;
``toolkit.artifacts``: the toolkit's own weights declarations), which any installed package, ours included
(``pyproject.toml``), can add to; and it may take a direct ``package.module:Attribute`` spec for a user's own
code that is importable but not installed as a plug-in. An unknown name is an error that lists the known ones;
an entry that fails to import is an error that names it, never a silent skip.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Iterator


class PluginError(ValueError):
    """A name that is not registered, or a registered plug-in that cannot be loaded."""


def _import(spec: str) -> Any:
    """The object ``package.module:Attr.Sub`` names; the import's own exception when it cannot be loaded."""
    module_name, sep, attr = spec.partition(":")
    if not (sep and module_name and attr):
        raise PluginError(f"{spec!r}: give package.module:Attribute")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(spec: str) -> Any:
    """The object a ``package.module:Attribute`` spec names (a PluginError says what is missing)."""
    try:
        return _import(spec)
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"{spec}: {type(exc).__name__}: {exc}") from exc


class Registry:
    """Names -> objects, each imported on first `get`.

    `kind` names what the entries are in messages ("pose backend"). `entries` maps a name to the object or to its
    ``package.module:Attribute`` spec; `group` adds the entry points of that group (read afresh each time, so a
    distribution installed meanwhile counts); `aliases` maps other spellings to a name; with `specs`, a name that
    is itself a ``package.module:Attribute`` spec is resolved directly. ``name in registry`` and iterating over the
    names work without importing anything.
    """

    def __init__(self, kind: str, entries: dict[str, Any] | None = None, *, group: str | None = None,
                 aliases: dict[str, str] | None = None, specs: bool = False):
        self.kind = kind
        self.group = group
        self.specs = specs
        self._entries = dict(entries or {})
        self._aliases = dict(aliases or {})

    def _table(self) -> dict[str, list[Any]]:
        """Name -> what is registered under it (more than one item: registered twice)."""
        table: dict[str, list[Any]] = {name: [entry] for name, entry in self._entries.items()}
        for ep in sorted(entry_points(group=self.group), key=lambda ep: ep.name) if self.group else ():
            if ep.value not in table.setdefault(ep.name, []):
                table[ep.name].append(ep.value)
        return table

    def names(self) -> list[str]:
        """The registered names (aliases not included): the given entries in their order, then the entry points'
        sorted."""
        return list(self._table())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._aliases.get(name, name) in self._table()

    def get(self, name: str) -> Any:
        """The object registered as `name` (imported now); a PluginError lists the known names or names the
        entry that failed to import, with its error."""
        if self.specs and ":" in name:
            found = [name]
        else:
            table = self._table()
            found = table.get(self._aliases.get(name, name), [])
            if not found:
                known = sorted(table) + sorted(a for a, target in self._aliases.items() if target in table)
                raise PluginError(f"unknown {self.kind} {name!r}; registered: {', '.join(known) or 'none'}"
                                  + (" (or give package.module:Class for your own)" if self.specs else ""))
        if len(found) > 1:
            raise PluginError(f"{self.kind} {name!r} is registered twice in {self.group}: {', '.join(found)}")
        if not isinstance(found[0], str):
            return found[0]
        try:
            return _import(found[0])
        except Exception as exc:  # a broken entry is reported by name, with its error
            where = "" if found[0] == name else f" ({found[0]})"
            raise PluginError(f"{self.kind} {name!r}{where} failed to load: {type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
