"""The evidence manifest (dronectl/domain/evidence.py): an intact package verifies; one byte
changed in any file, the manifest included, is found and the file named; missing and added files
are named; the audit rows are hashed in their canonical form."""

from __future__ import annotations

import json

import pytest

from dronectl.domain.evidence import (
    MANIFEST_NAME,
    ManifestError,
    build_manifest,
    canonical_json,
    read_manifest,
    sha256_hex,
    verify,
)

ROWS = {
    "incident": {"command_id": "inc-1", "actor_id": "cc-1"},
    "track": [{"lat_deg": 43.86, "lon_deg": 125.3}],
}
FILES = {
    "timeline.json": b'{"entries": []}',
    "audit/rows.json": canonical_json(ROWS),
    "video/nest07.mp4": bytes(range(256)) * 4,
    "snapshots/ice.jpg": b"\xff\xd8 picture",
}


def package() -> dict[str, bytes]:
    return {**FILES, MANIFEST_NAME: build_manifest(FILES, ROWS, {"incident_id": "inc-1"})}


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_an_intact_package_verifies() -> None:
    verdict = verify(package(), "audit/rows.json")
    assert verdict.intact
    assert verdict.files_checked == len(FILES)
    body = read_manifest(package()[MANIFEST_NAME])
    assert body["incident_id"] == "inc-1"
    assert body["audit_rows_sha256"] == sha256_hex(canonical_json(ROWS))
    assert body["files"]["video/nest07.mp4"]["sha256"] == sha256_hex(FILES["video/nest07.mp4"])


@pytest.mark.parametrize("name", [*FILES, MANIFEST_NAME])
def test_one_byte_changed_anywhere_is_named(name: str) -> None:
    files = package()
    for at in (0, len(files[name]) // 2, len(files[name]) - 1):
        altered = {**files, name: flip(files[name], at)}
        verdict = verify(altered, "audit/rows.json")
        assert not verdict.intact
        assert verdict.altered == (name,), (at, verdict)
        assert name in verdict.describe()


def test_missing_and_added_files_are_named() -> None:
    files = package()
    del files["snapshots/ice.jpg"]
    files["video/extra.mp4"] = b"not in the manifest"
    verdict = verify(files)
    assert verdict.missing == ("snapshots/ice.jpg",)
    assert verdict.added == ("video/extra.mp4",)
    assert verdict.altered == ()


def test_no_manifest_is_named_missing() -> None:
    verdict = verify(dict(FILES))
    assert verdict.missing == (MANIFEST_NAME,)


def test_audit_rows_are_hashed_canonically() -> None:
    """Rows re-serialised with other spacing and key order still match; other rows do not."""
    respaced = json.dumps(ROWS, indent=2).encode()
    assert sha256_hex(canonical_json(json.loads(respaced))) == sha256_hex(canonical_json(ROWS))
    other = {**ROWS, "incident": {"command_id": "inc-2", "actor_id": "cc-1"}}
    files = {**FILES, "audit/rows.json": canonical_json(other)}
    manifest = build_manifest(files, ROWS)  # the file hash matches, the rows hash does not
    verdict = verify({**files, MANIFEST_NAME: manifest}, "audit/rows.json")
    assert verdict.altered == ("audit/rows.json",)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ManifestError, match="not JSON"):
        read_manifest(b"\x00zip?")
    with pytest.raises(ManifestError, match="not a dronectl-evidence"):
        read_manifest(canonical_json({"files": {}}))
    with pytest.raises(ManifestError, match="own name"):
        build_manifest({MANIFEST_NAME: b"x"}, ROWS)
