"""Write the figure tables of docs/benchmarks.md from benchmarks/results/*.json and the rows of
benchmarks/targets.py, so that every figure the docs quote comes from a saved run.

    python benchmarks/tables.py           # rewrite every table between its markers
    python benchmarks/tables.py --check   # say which tables differ from the JSON; exit 1 if any

A table sits between `<!-- figures: NAME -->` and `<!-- end figures -->`, NAME a results file's stem.
Under each, the run it came from: the commit, how many runs the figures are the median of, the
machine and the command.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.targets import STEPS, TABLES, figure  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
TABLE = re.compile(r"<!-- figures: (?P<name>[\w.-]+) -->\n.*?<!-- end figures -->", re.S)


def number(value: Any, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        text = f"{int(value):,}"
    elif abs(value) >= 10:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.3g}"
    return text + unit


def provenance(figures: Mapping[str, Any]) -> str:
    run = figures.get("run")
    runs = (figures.get("median_of") or {}).get("runs", 1)
    how_many = f"median of {runs} runs" if runs > 1 else "one run"
    if not run:
        return (f"From {how_many}, made before results recorded their commit, parameters and machine (measured on"
                " 2 cores); run it again to trace it.")
    machine = run.get("machine") or {}
    changed = " with uncommitted changes" if run.get("uncommitted_changes") else ""
    when = (run.get("finished_at") or "")[:10]
    return (f"From {how_many} at commit `{(run.get('commit') or 'unknown')[:10]}`{changed}, {when}, on"
            f" {machine.get('cpus')} × {machine.get('cpu_model') or 'CPU'} ({machine.get('memory_gib')} GiB), Python"
            f" {machine.get('python')}: `{' '.join(run.get('command') or [])}`.")


def table(name: str, figures: Mapping[str, Any]) -> str:
    spread = (figures.get("median_of") or {}).get("spread") or {}
    lines = ["| figure | measured | target | |", "|---|---|---|---|"]
    for row in TABLES[name]:
        value = figure(figures, row.figure)
        shown = number(value, row.unit)
        if row.figure in spread:
            low, high = spread[row.figure]
            shown += f" ({number(low)}–{number(high)})"
        met = row.met(value)
        verdict = "" if met is None else "met" if met else "**missed**"
        if value is None and row.target:
            verdict = "not measured yet"
        lines.append(f"| {row.words} | {shown} | {row.target} | {verdict} |")
    return "\n".join(lines) + "\n\n" + provenance(figures)


def steps_table(name: str, saved: Mapping[str, Any]) -> str:
    """One row per step: what changed, its figures, and the commit it measured."""
    columns = STEPS[name]
    lines = ["| change | " + " | ".join(row.words for row in columns) + " | measured at |",
             "|---" * (len(columns) + 2) + "|"]
    for step in saved["steps"]:
        run = step.get("run") or {}
        runs = (step.get("median_of") or {}).get("runs", 1)
        at = f"`{(run.get('commit') or 'unknown')[:10]}`" + (" with uncommitted changes" if run.get("uncommitted_changes") else "")
        at += f", median of {runs} runs" if runs > 1 else ", one run"
        lines.append(f"| {step['change']} | " + " | ".join(number(figure(step, row.figure), row.unit) for row in columns)
                     + f" | {at} |")
    return "\n".join(lines) + "\n\n" + saved.get("about", "")


def rendered(text: str, results: Path = RESULTS) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        path = results / f"{name}.json"
        if name not in TABLES and name not in STEPS:
            raise SystemExit(f"docs/benchmarks.md has a table {name!r} that benchmarks/targets.py does not define")
        if not path.exists():
            body = f"No run saved yet ({path.name})."
        else:
            saved = json.loads(path.read_text())
            body = steps_table(name, saved) if name in STEPS else table(name, saved)
        return f"<!-- figures: {name} -->\n{body}\n<!-- end figures -->"

    return TABLE.sub(replace, text)


def blocks(text: str) -> dict[str, str]:
    """Each table of a page, by name, markers included."""
    return {m["name"]: m.group(0) for m in TABLE.finditer(text)}


def stale(docs: Path = DOCS, results: Path = RESULTS) -> list[str]:
    """The tables of `docs` that differ from what the JSON in `results` says (empty: all current)."""
    text = docs.read_text()
    ours, theirs = blocks(text), blocks(rendered(text, results))
    return sorted(name for name in theirs if ours.get(name) != theirs[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which tables are out of date")
    arguments = parser.parse_args()
    if arguments.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"docs/benchmarks.md: the table {name} differs from benchmarks/results/{name}.json;"
                  " run python benchmarks/tables.py")
        sys.exit(1 if out_of_date else 0)
    DOCS.write_text(rendered(DOCS.read_text()))
    print(f"wrote the tables of {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
