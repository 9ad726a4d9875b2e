"""The service's MAVLink signing keys: one file per nest in a directory only its owner can read.

``{directory}/system-{id}.key`` holds the 32-byte key of the nest whose MAVLink system id is
``id``, as 64 hex digits (``nest-{n}.key`` that of nest ``n`` when its link is a MAVLink network
of its own, beyond 254 nests, where system ids repeat). The directory is made 0700 and each file
0600, written to a temporary file and renamed so a crash never leaves half a key; a key file
anyone else may read is refused. Keys never go in the city config and are never logged (only
that a nest has one).

A key being provisioned is kept first as ``system-{id}.pending`` (same mode), and becomes the key
once the nest answers with it: if the service stops in between, the next provisioning offers the
same key again, so a nest that took it and a service that had not stored it yet still agree.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from adapters.mavlink.signing import KEY_LEN

DEFAULT_DIRECTORY = Path("var/keys/mavlink")


class KeyFileError(Exception):
    """A key file exists but cannot be used (wrong mode, wrong length, not hex)."""


class KeyStore:
    def __init__(self, directory: Path | str = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)

    def path(self, system_id: int, *, nest_id: int | None = None) -> Path:
        """``nest_id``: a nest whose link is a MAVLink network of its own (beyond 254 nests, its
        system id may repeat another's): its key is ``nest-{nest_id}.key``."""
        if not 1 <= system_id <= 255:
            raise ValueError(f"MAVLink system id {system_id} is outside 1..255")
        if nest_id is not None:
            return self.directory / f"nest-{nest_id}.key"
        return self.directory / f"system-{system_id}.key"

    def pending_path(self, system_id: int, *, nest_id: int | None = None) -> Path:
        return self.path(system_id, nest_id=nest_id).with_suffix(".pending")

    def load(self, system_id: int, *, nest_id: int | None = None) -> bytes | None:
        """The nest's key, None when it has none; KeyFileError when the file is unusable."""
        return self._read(self.path(system_id, nest_id=nest_id))

    def load_pending(self, system_id: int, *, nest_id: int | None = None) -> bytes | None:
        """A key offered to the nest and not yet confirmed (see the module's docstring)."""
        return self._read(self.pending_path(system_id, nest_id=nest_id))

    def store_pending(self, system_id: int, key: bytes, *, nest_id: int | None = None) -> Path:
        return self._write(self.pending_path(system_id, nest_id=nest_id), key)

    def _read(self, path: Path) -> bytes | None:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} may be read by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
        text = path.read_text().strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            raise KeyFileError(f"{path} is not a hex key") from None
        if len(key) != KEY_LEN:
            raise KeyFileError(f"{path} holds {len(key)} bytes, a key is {KEY_LEN}")
        return key

    def store(self, system_id: int, key: bytes, *, nest_id: int | None = None) -> Path:
        """Store the nest's key (the pending one, if any, is done with)."""
        path = self._write(self.path(system_id, nest_id=nest_id), key)
        self.pending_path(system_id, nest_id=nest_id).unlink(missing_ok=True)
        return path

    def _write(self, path: Path, key: bytes) -> Path:
        if len(key) != KEY_LEN:
            raise ValueError(f"a MAVLink signing key is {KEY_LEN} bytes, not {len(key)}")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (key.hex() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return path

    def remove(self, system_id: int, *, nest_id: int | None = None) -> bool:
        try:
            self.path(system_id, nest_id=nest_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def systems(self) -> list[int]:
        """System ids that have a key file."""
        if not self.directory.is_dir():
            return []
        out = []
        for entry in self.directory.glob("system-*.key"):
            try:
                out.append(int(entry.stem.removeprefix("system-")))
            except ValueError:
                continue
        return sorted(out)
