"""``dronectl evidence export INCIDENT_ID --out FILE.zip`` and ``dronectl evidence verify FILE.zip``
(issue 16, the evidence package; see docs/evidence.md).

Export reads the incident from the audit store through its own queries (audit/evidence.py: the
incident, its flights with track and events, the commands and transitions of its nests in its
window), writes them with a readable report (HTML), the tracks (GeoJSON, KML), the snapshots and
the flights' recordings (cut to the incident's window without re-encoding, else whole: the
manifest says which) and a manifest into a zip (video/evidence.py, shared with the page's export
button), and records the export in the audit store.
Verify recomputes every hash. Exit codes: 0 done/intact, 1 not intact, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import socket
import sys
import zipfile
from pathlib import Path

from dronectl.audit import AuditError, AuditStore, is_postgres_url
from dronectl.audit.evidence import collect
from dronectl.domain.evidence import verify
from dronectl.domain.evidence_timeline import EvidenceError
from dronectl.video.evidence import ROWS_NAME, export_record, package

__all__ = ["EvidenceError", "export", "main", "verify_zip"]


async def export(
    audit: str, incident_id: str, out: Path, recordings: Path | None, snapshots: Path | None, actor_id: str
) -> str:
    """Write the package to ``out`` and record the export; returns the manifest's SHA-256."""
    store = await AuditStore.open(audit)
    try:
        rows = await collect(store, incident_id)
        data, _notes = await asyncio.to_thread(package, rows, recordings, snapshots)
        # no service login is involved: whoever can read the store can export, so the record
        # names the machine's account that ran it and claims no role
        record = export_record(rows, data, out.name, actor_id=actor_id, actor_role="", channel="cli")
        partial = out.with_name(out.name + ".part")
        partial.write_bytes(data)
        try:
            await store.record_command(record)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(out)
        return str(record.args["manifest_sha256"])
    finally:
        await store.close()


def verify_zip(path: Path) -> tuple[bool, str]:
    """(intact, summary) of the package at ``path``; EvidenceError for a file that is no zip."""
    if not path.is_file():
        raise EvidenceError(f"no file {path}")
    if not zipfile.is_zipfile(path):
        raise EvidenceError(f"{path} is not a zip file")
    files: dict[str, bytes] = {}
    broken: list[str] = []
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            try:
                files[name] = z.read(name)
            except (zipfile.BadZipFile, OSError):  # its CRC no longer matches: altered
                files[name] = b""
                broken.append(name)
    verdict = verify(files, ROWS_NAME)
    if broken:
        return False, "NOT intact; altered: " + ", ".join(sorted(set(broken) | set(verdict.altered)))
    return verdict.intact, verdict.describe()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dronectl evidence", description="An incident's evidence package.")
    sub = parser.add_subparsers(dest="action", required=True)
    ex = sub.add_parser("export", help="package an incident from the audit store")
    ex.add_argument("incident_id")
    ex.add_argument("--out", required=True, type=Path, help="the zip to write")
    ex.add_argument("--audit", default="var/audit.sqlite3", help="SQLite file or postgresql:// DSN")
    ex.add_argument(
        "--recordings", type=Path, help="where the flights' .mp4 files are (default: as recorded)"
    )
    ex.add_argument("--snapshots", type=Path, help="where the snapshots are (default var/snapshots)")
    ve = sub.add_parser("verify", help="recompute every hash of a package")
    ve.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.action == "export":
            if not is_postgres_url(args.audit) and not Path(args.audit).is_file():
                raise EvidenceError(f"no audit store at {args.audit}")
            sha = asyncio.run(
                export(args.audit, args.incident_id, args.out, args.recordings, args.snapshots, _os_account())
            )
            sys.stdout.write(f"{args.out}: evidence of incident {args.incident_id}, manifest sha256 {sha}\n")
            return 0
        intact, summary = verify_zip(args.file)
    except (EvidenceError, AuditError) as exc:
        sys.stderr.write(f"dronectl evidence: {exc}\n")
        return 2
    (sys.stdout if intact else sys.stderr).write(f"{args.file}: {summary}\n")
    return 0 if intact else 1


def _os_account() -> str:
    """The account the operating system logged in (not a name typed on the command line)."""
    return f"{getpass.getuser()}@{socket.gethostname()}"
