"""Methods by name: `toolkit eval --method NAME` and `evaluate(method=NAME)`.

A method is a :class:`~toolkit.harness.method.Method` subclass registered under the
entry-point group ``toolkit.methods`` (ours are declared in ``pyproject.toml``;
any installed package can add its own), or named directly as
``package.module:Class`` for a user's method that is importable but not registered.
"""

from __future__ import annotations

from typing import Any

from toolkit import plugins
from toolkit.harness.method import Method

GROUP = "toolkit.methods"


def method_names() -> list[str]:
    """Registered method names, sorted."""
    return plugins.names(GROUP)


def method_class(name: str) -> type[Method]:
    """The Method subclass registered as `name` (or named by a ``pkg.module:Class`` spec)."""
    cls = plugins.load(GROUP, name)
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise plugins.PluginError(f"method {name!r} resolves to {cls!r}, which is not a toolkit Method subclass")
    return cls


def get_method(name: str, **options: Any) -> Method:
    """An instance of the method `name`, built with `options` (e.g. checkpoint=...)."""
    return method_class(name)(**options)
