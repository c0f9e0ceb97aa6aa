"""`regatta clusters list`'s columns (regatta/cli/render.py): text others wrote reaches the
terminal as its escapes, never as control characters."""

from __future__ import annotations

import io

from rich.console import Console

from regatta.cli import render


def test_a_hostile_hold_reason_cannot_forge_a_row_or_write_to_the_terminal(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(render, "console", Console(file=out, force_terminal=False))
    hostile = "audit\nprod-db   eks   healthy\x1b]52;c;cm0gLXJmIC8=\x07\r\u202e"
    render.print_columns("2 clusters", ("NAME", "HOLD"), [("a", hostile), ("b", "")])
    lines = out.getvalue().splitlines()
    assert len(lines) == 3  # piped: the headers and two rows (the title goes to stderr); no row forged
    assert lines[1] == "a      audit\\nprod-db   eks   healthy\\x1b]52;c;cm0gLXJmIC8=\\x07\\r\\u202e"
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in out.getvalue().replace("\n", ""))
