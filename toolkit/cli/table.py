"""Plain-text tables for the terminal, shared by every command."""

from __future__ import annotations


def format_table(header: list[str], rows: list[list[str]], right_from: int | None = None) -> str:
    """Columns padded to their widest cell, a dashed rule under the header; columns from `right_from` on right-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.rjust(w) if right_from is not None and i >= right_from else c.ljust(w)
                         for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]])
