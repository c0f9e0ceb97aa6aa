"""The audit trail's two files outside the database (regatta/rules/audit_chain.py says why):

- the audit key file (REGATTA_AUDIT_KEY_FILE): one key per line, the first signing what is written now,
  the others kept to verify what older keys signed. Made at set-up (`regatta audit init-key`, or by
  `regatta dev` in its home) with mode 0600; held by the API and the workers, never by the database.
- the checkpoint file (REGATTA_AUDIT_CHECKPOINTS): signed heads of the trail, one JSON line each,
  only ever appended to (put it on append-only storage: `chattr +a`, or a store with object lock).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from regatta.rules import audit_chain

MIN_KEY_CHARACTERS = 32


class AuditKeyError(ValueError):
    pass


@dataclass(frozen=True)
class AuditKeys:
    current: bytes | None = None
    by_id: dict[str, bytes] = field(default_factory=dict)

    @property
    def current_id(self) -> str | None:
        return audit_chain.key_id(self.current) if self.current is not None else None

    @classmethod
    def from_file(cls, path: str | Path) -> AuditKeys:
        try:
            lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()
                     and not line.startswith("#")]
        except OSError as error:
            raise AuditKeyError(f"cannot read the audit key file {path}: {error.strerror or error}") from None
        short = [i + 1 for i, line in enumerate(lines) if len(line) < MIN_KEY_CHARACTERS]
        if not lines or short:
            raise AuditKeyError(f"the audit key file {path} must hold keys of at least {MIN_KEY_CHARACTERS} characters,"
                                " one per line (`regatta audit init-key` makes one)")
        keys = [line.encode() for line in lines]
        return cls(current=keys[0], by_id={audit_chain.key_id(key): key for key in keys})


def make_key_file(path: str | Path) -> bool:
    """A new audit key at `path` (mode 0600), unless one is there already: True when it was made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return True


def create_checkpoint_file(path: str | Path) -> None:
    """The checkpoint file, empty, unless it is there already (then it is left as it is)."""
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600))


def append_checkpoint(path: str | Path, checkpoint: audit_chain.Checkpoint) -> None:
    """One line at the end of the checkpoint file, flushed to disk before returning."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.write(descriptor, (checkpoint.line() + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_checkpoints(path: str | Path, keys: AuditKeys) -> tuple[list[audit_chain.Checkpoint], list[str]]:
    """The checkpoints that can be trusted, and why each other line cannot (a missing file: none)."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return [], []
    found, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        read = audit_chain.read_checkpoint(line, keys.by_id)
        if isinstance(read, str):
            problems.append(f"{path}:{number}: {read}")
        else:
            found.append(read)
    return found, problems
