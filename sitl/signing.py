"""MAVLink signing as current PX4 does it, for one simulated nest (every component of it).

PX4 (src/modules/mavlink/mavlink_sign_control.cpp, docs "MAVLink Message Signing"):

- the key is 32 bytes kept on the vehicle's storage with the last timestamp (here
  ``{state_dir}/nestNN/mavlink/mavlink-key``, mode 0600, read at start: it survives a restart);
- no key: signing is off, everything is accepted, nothing is signed;
- ``SETUP_SIGNING`` with a key provisions it (stored at once); with an all-zero key and a zero
  initial timestamp it clears it;
- with a key: everything sent is signed; an incoming message that is unsigned or not signed
  with the key is dropped, except RADIO_STATUS, ADSB_VEHICLE and COLLISION. ``SETUP_SIGNING``
  is a message like the others, so once a key is set only a request signed with it can change
  or clear it. (That is PX4 with ``MAV_SIGN_CFG`` 2, "always"; with 0, PX4 signs but still accepts
  unsigned messages.)
"""

from __future__ import annotations

import os
import struct
from collections import Counter
from pathlib import Path

import structlog

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.signing import KEY_LEN, PX4_UNSIGNED_ALLOWED, Reject, Signer, Verifier

log = structlog.get_logger(__name__)

TIMESTAMP_LEN = 8  # PX4 stores the key, then the uint64 timestamp
LINK_ID = 0  # PX4 uses its MAVLink instance number; the simulator has one instance per nest


class SimSigning:
    def __init__(self, system_id: int, key_path: Path | None = None) -> None:
        self.system_id = system_id
        self.key_path = key_path
        self._signer: Signer | None = None
        self._verifier: Verifier | None = None
        self.rejected: Counter[str] = Counter()
        self.accepted_unsigned = 0  # the PX4 exceptions, while signing is on
        key = self._read_key()
        if key is not None:
            self._set(key)

    @property
    def enabled(self) -> bool:
        return self._signer is not None

    @property
    def key(self) -> bytes | None:
        return self._signer.key if self._signer is not None else None

    def accept(self, msg: mav.MAVLink_message) -> bool:
        """Whether the nest acts on ``msg``; SETUP_SIGNING is acted on here (returns False: it is
        for the link, no component sees it)."""
        if self._verifier is not None:
            reason = self._verifier.check(msg.get_msgbuf())
            if reason is not None:
                if reason is Reject.UNSIGNED and msg.get_msgId() in PX4_UNSIGNED_ALLOWED:
                    self.accepted_unsigned += 1
                    return True
                self.rejected[reason] += 1
                return False
        if msg.get_msgId() == mav.MAVLINK_MSG_ID_SETUP_SIGNING:
            if msg.target_system in (0, self.system_id):
                self._setup_signing(bytes(msg.secret_key), int(msg.initial_timestamp))
            return False
        return True

    def outgoing(self, frame: bytes) -> bytes | None:
        """The frame as it leaves: signed when a key is set (None: cannot be signed, not sent)."""
        if self._signer is None:
            return frame
        return self._signer.sign(frame)

    # ---------------------------------------------------------------------------------------
    def _setup_signing(self, key: bytes, initial_timestamp: int) -> None:
        if len(key) != KEY_LEN:
            return
        if initial_timestamp == 0 and not any(key):
            self._signer = self._verifier = None
            self._write(bytes(KEY_LEN), 0)
            log.info("sitl.signing.cleared", system_id=self.system_id)
            return
        self._set(key)
        self._write(key, initial_timestamp)
        log.info("sitl.signing.provisioned", system_id=self.system_id)  # never the key itself

    def _set(self, key: bytes) -> None:
        self._signer = Signer(key, LINK_ID)
        self._verifier = Verifier(key)

    def _read_key(self) -> bytes | None:
        if self.key_path is None:
            return None
        try:
            data = self.key_path.read_bytes()
        except FileNotFoundError:
            return None
        if len(data) < KEY_LEN + TIMESTAMP_LEN:
            return None  # as PX4: a short file is "not set yet"
        key = data[:KEY_LEN]
        (timestamp,) = struct.unpack("<Q", data[KEY_LEN : KEY_LEN + TIMESTAMP_LEN])
        if timestamp == 0 and not any(key):
            return None
        return key

    def _write(self, key: bytes, timestamp: int) -> None:
        if self.key_path is None:
            return
        self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key + struct.pack("<Q", timestamp))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.key_path)


def key_path(state_dir: Path, nest_id: int) -> Path:
    """Where nest ``nest_id`` keeps its key under the simulator's state directory."""
    return state_dir / f"nest{nest_id:02d}" / "mavlink" / "mavlink-key"
