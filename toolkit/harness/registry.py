"""Methods by name: `toolkit eval --method NAME` and `evaluate(method=NAME)`.

A method is a :class:`~toolkit.harness.method.Method` subclass registered under the
entry-point group ``toolkit.methods``, directly or through its package description
(:class:`toolkit.package.MethodPackage`; ours are declared in ``pyproject.toml``;
any installed package can add its own), or named directly as
``package.module:Class`` for a user's method that is importable but not registered.
"""

from __future__ import annotations

from typing import Any, Sequence

from toolkit import plugins
from toolkit.harness.method import Method
from toolkit.package import method_names, method_package

__all__ = ["method_names", "method_class", "get_method", "method_options"]


def method_class(name: str) -> type[Method]:
    """The Method subclass registered as `name` (or named by a ``pkg.module:Class`` spec)."""
    cls = method_package(name).method_class()
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise plugins.PluginError(f"method {name!r} resolves to {cls!r}, which is not a toolkit Method subclass")
    return cls


def get_method(name: str, **options: Any) -> Method:
    """An instance of the method `name`, built with `options` (e.g. checkpoint=...)."""
    return method_class(name)(**options)


def method_options(methods: Sequence[str], given: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--method-option`` values (``[METHOD:]KEY=VALUE``) -> each method's constructor options.

    A pair naming a METHOD goes to that method only; one without goes to every method of `methods` that
    declares KEY (:attr:`Method.options`; with one method, to that method), and it is an error when none does.
    Values are parsed to the declared types; a ValueError names the pair and lists the options there are.
    """
    classes = {name: method_class(name) for name in methods}
    pairs: dict[str, list[tuple[str, str]]] = {name: [] for name in methods}
    for item in given:
        target, sep, value = item.partition("=")
        if not sep or not target:
            raise ValueError(f"--method-option {item}: give KEY=VALUE (or METHOD:KEY=VALUE)")
        method, _, key = target.rpartition(":")
        if method:
            if method not in classes:
                raise ValueError(f"--method-option {item}: {method} is not a method of this run "
                                 f"({', '.join(methods) or 'none'})")
            pairs[method].append((key, value))
            continue
        takers = [name for name, cls in classes.items() if key in cls.options or len(classes) == 1]
        if not takers:
            known = "; ".join(f"{name}: {cls.options_text()}" for name, cls in classes.items())
            raise ValueError(f"--method-option {item}: no method of this run has an option {key!r} "
                             f"(options of {known})")
        for name in takers:
            pairs[name].append((key, value))
    return {name: classes[name].parse_options(pairs[name], name) for name in methods}
