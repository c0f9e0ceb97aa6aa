"""Reading a bundle file (`regatta policy preview|rollout --file bundle.yaml`) and the manifests it
names: inline, a directory next to it, or a git repository at a ref. The result carries its
manifests inline and its revision (the hash of its content), so what starts a PolicyRollout is
what was read, whichever machine the worker runs on.

Every problem is reported with the file and line that holds it, as wave files are: the bundle
file's own fields, and each manifest at its source file and line.

Git is real git (GitPython drives the `git` the machine has): the repository is cloned into a
temporary directory, the ref resolved to a commit (recorded as `source_commit`), and the files
read from that commit's tree, not from a working copy.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from regatta.formats.yaml_lines import MAX_YAML_BYTES, compose_limited, line_of, load_limited, read_model
from regatta.models.policy import BundleSpec, GitSource
from regatta.outbound_connections import OutboundRefused, OutboundUnreachable, git_clone
from regatta.rules import bundles
from regatta.rules.outbound import OutboundRules

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
MAX_MANIFEST_FILES = 2000
GIT_SECONDS = 45.0  # a clone that takes longer is killed (and the start refused)


class BundleFileError(ValueError):
    pass


@dataclass(frozen=True)
class Origin:
    """Where a manifest was read: file and line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _documents(text: str, name: str) -> list[tuple[dict[str, Any], Origin]]:
    """The objects of one YAML stream (a `kind: List` is its items), each with its line; within the
    size and alias limits every YAML from outside is read under (regatta/formats/yaml_lines.py)."""
    try:
        nodes = compose_limited(text)
        docs = load_limited(text)  # one per node, None for an empty document (a trailing `---`)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise BundleFileError(f"{name}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(error, 'problem', None) or error}") from None
    found = []
    for node, doc in zip(nodes, docs, strict=True):
        if doc is None or node is None:
            continue
        line = node.start_mark.line + 1
        if not isinstance(doc, dict):
            raise BundleFileError(f"{name}:{line}: a manifest is a mapping with apiVersion, kind and metadata")
        if doc.get("kind") == "List" or str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            items = node.value and next((v for k, v in node.value if k.value == "items"), None)
            for i, item in enumerate(doc.get("items") or []):
                item_line = items.value[i].start_mark.line + 1 if isinstance(items, yaml.SequenceNode) else line
                found.append((item, Origin(name, item_line)))
            continue
        found.append((doc, Origin(name, line)))
    return found


def read_directory(directory: Path, shown_as: str) -> list[tuple[dict[str, Any], Origin]]:
    if not directory.is_dir():
        raise BundleFileError(f"{shown_as}: not a directory")
    manifests = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES):
        manifests += _documents(path.read_text(), str(Path(shown_as) / path.relative_to(directory)))
    return manifests


def read_git(source: GitSource, outbound: OutboundRules | None = None) -> tuple[list[tuple[dict[str, Any], Origin]], str]:
    """The manifests under `path` at `ref`, and the commit the ref named. With `outbound` (a start from the
    API or a worker: a URL someone else typed), the clone goes through the outbound rules, pinned to the
    address they checked, and is killed at GIT_SECONDS; without (an operator's own CLI), git runs as theirs."""
    import git  # GitPython: imported here so a machine without git can still read inline bundles

    with tempfile.TemporaryDirectory(prefix="regatta-bundle-") as scratch:
        if outbound is not None:
            try:
                git_clone(source.url, scratch, outbound, what="source.git.url", timeout=GIT_SECONDS)
            except (OutboundRefused, OutboundUnreachable) as error:
                raise BundleFileError(str(error)) from None
            repo = git.Repo(scratch)
        else:
            try:
                repo = git.Repo.clone_from(source.url, scratch, no_checkout=True)
            except git.GitCommandError as error:
                raise BundleFileError(f"git: cannot clone {source.url}: {(error.stderr or str(error)).strip()}") from None
        commit = None
        for name in (f"origin/{source.ref}", source.ref):
            try:
                commit = repo.commit(name)
                break
            except (git.BadName, ValueError):
                continue
        if commit is None:
            raise BundleFileError(f"git: {source.url} has no branch, tag or commit {source.ref!r}")
        tree = commit.tree
        if source.path.strip("/"):
            try:
                tree = tree / source.path.strip("/")
            except KeyError:
                raise BundleFileError(f"git: {source.url}@{source.ref} has no directory {source.path!r}") from None
        manifests = []
        blobs = [b for b in tree.traverse() if isinstance(b, git.Blob) and Path(b.path).suffix in MANIFEST_SUFFIXES]
        if len(blobs) > MAX_MANIFEST_FILES or sum(b.size for b in blobs) > MAX_YAML_BYTES * 4:
            raise BundleFileError(f"git: {source.url}@{source.ref}:{source.path or '/'} holds {len(blobs)} manifest files,"
                                  f" {sum(b.size for b in blobs)} bytes: a bundle reads at most {MAX_MANIFEST_FILES} files"
                                  f" and {MAX_YAML_BYTES * 4 // (1024 * 1024)} MiB; point source.git.path at its directory")
        for blob in sorted(blobs, key=lambda b: str(b.path)):
            shown = f"{source.url}@{commit.hexsha[:12]}:{blob.path}"
            try:
                text = blob.data_stream.read().decode()
            except UnicodeDecodeError:
                raise BundleFileError(f"{shown}: not UTF-8 text") from None
            manifests += _documents(text, shown)
        return manifests, commit.hexsha


def resolve(spec: BundleSpec, *, base: Path | None, shown_as: str = "bundle",
            outbound: OutboundRules | None = None) -> tuple[BundleSpec, list[Origin | None]]:
    """The bundle with its manifests inline, its revision and (from git) its commit; and where each
    manifest came from. `base` is the bundle file's directory (None: directory sources are refused);
    `outbound`: the rules a git source someone else named is read under (read_git)."""
    origins: list[Origin | None] = [None] * len(spec.manifests)
    updates: dict[str, Any] = {}
    if spec.source is not None:
        if spec.source.directory is not None:
            if base is None:
                raise BundleFileError("a directory source is read where the bundle file is: start this bundle with"
                                      " `regatta policy rollout --file`, or give its manifests inline or from git")
            found = read_directory((base / spec.source.directory).resolve(), spec.source.directory)
        else:
            assert spec.source.git is not None
            found, commit = read_git(spec.source.git, outbound)
            updates["source_commit"] = commit
        updates["manifests"] = [m for m, _ in found]
        origins = [o for _, o in found]
        updates["source"] = None
    resolved = spec.model_copy(update=updates)
    return resolved.model_copy(update={"revision": bundles.revision(resolved)}), origins


def load_bundle_file(path: str | Path) -> BundleSpec:
    path = Path(path)
    spec, root = read_model(path, BundleSpec, what="bundle file", error=BundleFileError,
                            shape="one mapping with name and manifests or a source (see examples/bundle.yaml)")
    resolved, origins = resolve(spec, base=path.parent)
    problems = bundles.bundle_problems(resolved)
    if problems:
        lines = []
        for loc, message in problems:
            origin = origins[loc[1]] if loc[:1] == ("manifests",) and len(loc) > 1 and isinstance(loc[1], int) \
                and loc[1] < len(origins) else None
            lines.append(f"{origin or f'{path}:{line_of(root, loc)}'}: {message}")
        raise BundleFileError("\n".join(lines))
    return resolved
