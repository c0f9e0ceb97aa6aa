"""YAML from outside (a bundle's git source, a file an operator names) is read within limits, and what
breaks them is a refusal that says so, never a crash: an alias bomb, an alias into its own anchor,
nesting deeper than the parser goes; and an empty document (a trailing `---`) is just skipped."""

from __future__ import annotations

import pytest

from regatta.formats.bundle_file import BundleFileError, _documents
from regatta.formats.yaml_lines import YamlTooLarge, compose_limited

MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: kube-system}\ndata: {a: b}\n"


def test_an_empty_document_is_skipped_not_a_crash():
    found = _documents(MANIFEST + "---\n", "cm.yaml")
    assert [doc["kind"] for doc, _ in found] == ["ConfigMap"]
    assert len(_documents("---\n" + MANIFEST + "---\n---\n" + MANIFEST, "two.yaml")) == 2


@pytest.mark.parametrize(("text", "says"), [
    ("a: &a [*a]\n", "cycle"),
    ("[" * 5000 + "]" * 5000, "nests too deeply"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e]\n", "alias bomb"),
])
def test_what_breaks_the_limits_is_refused_saying_why(text, says):
    with pytest.raises(YamlTooLarge, match=says):
        compose_limited(text)
    with pytest.raises(BundleFileError, match=says):
        _documents(text, "hostile.yaml")


def test_shared_anchors_within_the_limit_are_read():
    text = "a: &a {k: v}\nb: [*a, *a, *a]\n"
    assert compose_limited(text)[0] is not None
