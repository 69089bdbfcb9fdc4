"""`MethodPackage`: everything one method brings, returned by its single ``toolkit.methods`` entry point.

A method's whole presence is its folder plus that one line in its distribution's entry points: the description
names its Method (inference), its training recipe (if any), the pretrained files it needs (each with its
first-use check and converter, if any) and its configs folder. Classes are named by ``package.module:Class``
specs and imported only when used, so describing every method (``toolkit weights status``) stays cheap.

A plain Method subclass registered directly is a package with nothing else (`describe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit import plugins

if TYPE_CHECKING:
    from toolkit.weights import Artifact

GROUP = "toolkit.methods"

#: The methods: the ``toolkit.methods`` entry points, or a ``pkg.module:Attr`` spec for a user's own.
METHODS = plugins.Registry("method", group=GROUP, specs=True)


@dataclass(frozen=True)
class MethodPackage:
    """One method's Method class, training recipe, artifacts and configs folder."""

    method: str | type  # "package.module:Class" of its toolkit.harness.method.Method subclass, or the class
    recipe: str | None = None  # "package.module:Class" of its toolkit.train.recipe.Recipe subclass
    artifacts: tuple[Artifact, ...] = ()  # the pretrained files it reads (toolkit.weights joins them)
    configs: Path | None = None  # the folder of its named configs (tiny.toml, paper.toml)

    def method_class(self) -> type:
        """The Method subclass (imported now)."""
        return plugins.resolve(self.method) if isinstance(self.method, str) else self.method

    def recipe_class(self) -> type | None:
        """The Recipe subclass, or None for a method that does not train."""
        return plugins.resolve(self.recipe) if self.recipe else None


def describe(obj: Any) -> MethodPackage:
    """A `toolkit.methods` entry's object as a package description (a bare Method class becomes one)."""
    return obj if isinstance(obj, MethodPackage) else MethodPackage(method=obj)


def method_package(name: str) -> MethodPackage:
    """The package registered as `name` (``pkg.module:Attr`` specs are allowed, as everywhere)."""
    return describe(METHODS.get(name))


def method_names() -> list[str]:
    """Registered method names, sorted."""
    return METHODS.names()


def recipe_names() -> list[str]:
    """The registered methods that can be trained (their package names a recipe)."""
    return [name for name in method_names() if method_package(name).recipe]
