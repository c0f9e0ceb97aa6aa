"""README.md and docs/ link only to what a clone has: a newcomer's first page must not lead out of the repository
(README linked ../shared/DESIGN.md, which a clone does not hold)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks and spans hold examples, not links
    text = re.sub(r"`[^`\n]*`", "", text)
    return [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text) if not re.match(r"[a-z]+:", m.group(1))]


def test_every_relative_link_in_the_readme_and_the_docs_leads_to_a_file_of_the_repository():
    broken = [(page.relative_to(ROOT).as_posix(), target) for page in PAGES for target in links(page.read_text())
              if not (page.parent / target).resolve().is_relative_to(ROOT) or not (page.parent / target).exists()]
    assert broken == []
    assert "../shared/DESIGN.md" not in (ROOT / "README.md").read_text()


def test_the_link_reader_finds_links_and_skips_code():
    assert links("see [a](docs/a.md#x) and `[b](nope.md)` and [c](https://example.com)") == ["docs/a.md"]
