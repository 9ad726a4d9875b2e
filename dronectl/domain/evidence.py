"""An evidence package's manifest (issue 16): the SHA-256 of every file, of the audit rows used,
and of the manifest itself; and the check of a package against it. Pure: bytes in, answers out.

The manifest is written as canonical JSON (sorted keys, no spaces, UTF-8), and carries
``manifest_sha256`` over its own canonical form without that field; :func:`verify` insists the
file is byte for byte that form, so any change to it is found and named ``manifest.json``.
These hashes find an altered, missing or added file; they do not prove who made the package
(whoever rewrites every file can rewrite the manifest too: that needs a signature).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FORMAT = "dronectl-evidence/1"
MANIFEST_NAME = "manifest.json"


class ManifestError(ValueError):
    """A manifest that cannot be read or is not one of ours."""


def canonical_json(value: Any) -> bytes:
    """The one byte form of ``value``: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(
    files: Mapping[str, bytes], audit_rows: Any, info: Mapping[str, Any] | None = None
) -> bytes:
    """The manifest (canonical JSON bytes) of ``files`` (name in the package -> contents) and
    the ``audit_rows`` the package was made from; ``info``: what else to say (incident, window)."""
    if MANIFEST_NAME in files:
        raise ManifestError(f"{MANIFEST_NAME} is the manifest's own name, not a file to list")
    body: dict[str, Any] = {
        **(info or {}),
        "format": FORMAT,
        "files": {name: {"sha256": sha256_hex(data), "bytes": len(data)} for name, data in files.items()},
        "audit_rows_sha256": sha256_hex(canonical_json(audit_rows)),
    }
    body["manifest_sha256"] = sha256_hex(canonical_json(body))
    return canonical_json(body)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`verify` found; intact when every list is empty."""

    altered: tuple[str, ...]
    missing: tuple[str, ...]
    added: tuple[str, ...]
    files_checked: int

    @property
    def intact(self) -> bool:
        return not (self.altered or self.missing or self.added)

    def describe(self) -> str:
        if self.intact:
            return f"intact: {self.files_checked} files and the manifest match their SHA-256"
        parts = [
            f"{what}: {', '.join(names)}"
            for what, names in (("altered", self.altered), ("missing", self.missing), ("added", self.added))
            if names
        ]
        return "NOT intact; " + "; ".join(parts)


def read_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest's contents; ManifestError unless it is ours, canonical and self-consistent."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{MANIFEST_NAME} is not JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT or not isinstance(body.get("files"), dict):
        raise ManifestError(f"{MANIFEST_NAME} is not a {FORMAT} manifest")
    claimed = body.pop("manifest_sha256", None)
    if claimed != sha256_hex(canonical_json(body)) or raw != canonical_json(
        {**body, "manifest_sha256": claimed}
    ):
        raise ManifestError(f"{MANIFEST_NAME} was altered (its own SHA-256 does not match)")
    return body


def verify(files: Mapping[str, bytes], audit_rows_name: str | None = None) -> Verdict:
    """Check a package's ``files`` (every name in it -> contents, the manifest included).

    ``audit_rows_name``: the file holding the audit rows as JSON, whose canonical form must
    match ``audit_rows_sha256`` too. A manifest that is missing or altered is itself named."""
    raw = files.get(MANIFEST_NAME)
    if raw is None:
        return Verdict((), (MANIFEST_NAME,), tuple(sorted(files)), 0)
    try:
        body = read_manifest(raw)
    except ManifestError:
        return Verdict((MANIFEST_NAME,), (), (), 0)
    listed: dict[str, Any] = body["files"]
    altered = [
        name
        for name, entry in listed.items()
        if name in files and (not isinstance(entry, dict) or entry.get("sha256") != sha256_hex(files[name]))
    ]
    if audit_rows_name is not None and audit_rows_name in files and audit_rows_name not in altered:
        try:
            rows = json.loads(files[audit_rows_name].decode("utf-8"))
            same = sha256_hex(canonical_json(rows)) == body.get("audit_rows_sha256")
        except (UnicodeDecodeError, json.JSONDecodeError):
            same = False
        if not same:
            altered.append(audit_rows_name)
    missing = [name for name in listed if name not in files]
    added = [name for name in files if name != MANIFEST_NAME and name not in listed]
    checked = len(listed) - len(missing)
    return Verdict(tuple(sorted(altered)), tuple(sorted(missing)), tuple(sorted(added)), checked)
