"""A config dict written back as TOML text, for tests that hand a config file to a subprocess."""

from __future__ import annotations


def toml_text(table: dict, prefix: str = "") -> str:
    """A config dict as TOML text (tables, strings, numbers, booleans and lists of them): enough for a config."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace('\\', '\\\\').replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    plain = [f"{k} = {value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    lines = ([f"[{prefix}]"] if prefix and plain else []) + plain
    for k, v in table.items():
        if isinstance(v, dict):
            lines.append(toml_text(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines) + "\n"
