"""docs/cloud-conformance.md names, for each cloud rule, the test that holds Regatta to it: every test it
names exists (a name cut short with … is the start of one), and every rule row names its source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "cloud-conformance.md").read_text()
TESTS = "\n".join(path.read_text() for path in (ROOT / "tests").rglob("test_*.py"))
DEFINED = set(re.findall(r"def (test_\w+)", TESTS))
FILES = {path.name for path in (ROOT / "tests").rglob("test_*.py")}


def test_every_test_the_document_names_exists():
    named = re.findall(r"(test_\w+?)(…|\b)", DOC)
    assert named, "the document names no test"
    missing = []
    for name, cut in named:
        if name + ".py" in FILES or name in {f.removesuffix(".py") for f in FILES}:
            continue
        if (cut and not any(d.startswith(name) for d in DEFINED)) or (not cut and name not in DEFINED):
            missing.append(name)
    assert missing == []


def test_every_rule_row_names_its_source_and_a_simulator_behaviour():
    rows = [line for line in DOC.splitlines() if re.match(r"\| [EGAK]\d+ \|", line)]
    assert len(rows) >= 45
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 6 and all(cells[:5]), row
