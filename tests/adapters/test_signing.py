"""MAVLink 2 signing on raw frames (adapters.mavlink.signing) and the 0600 key store."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.keystore import KeyFileError, KeyStore
from adapters.mavlink.message import new_parser
from adapters.mavlink.signing import (
    NEW_STREAM_WINDOW_TICKS,
    Reject,
    Signer,
    Verifier,
    is_signed,
    new_key,
    sign_frame,
    signature_fields,
)


def frame(seq: int = 0, sysid: int = 7, compid: int = 1) -> bytes:
    encoder = new_parser(sysid, compid)
    encoder.seq = seq
    return bytes(mav.MAVLink_heartbeat_message(2, 12, 0, 0, 4, 3).pack(encoder))


def test_a_signed_frame_parses_and_pymavlink_agrees_with_the_signature() -> None:
    key = new_key()
    signed = sign_frame(frame(), key, link_id=5, timestamp=123456)
    assert signed is not None and is_signed(signed)
    assert signature_fields(signed) == (5, 123456)
    # pymavlink, given the key, accepts our signature (the reference implementation agrees).
    parser = new_parser()
    parser.signing.secret_key = key
    (msg,) = parser.parse_buffer(signed) or []
    assert msg.get_type() == "HEARTBEAT" and msg.get_signed()


def test_verifier_accepts_once_and_refuses_the_rest_by_reason() -> None:
    key = new_key()
    verifier = Verifier(key)
    signer = Signer(key)
    first = signer.sign(frame(0))
    second = signer.sign(frame(1))
    assert first is not None and second is not None
    assert verifier.check(frame(2)) is Reject.UNSIGNED
    assert verifier.check(sign_frame(frame(3), new_key(), 0, 10**12) or b"") is Reject.BAD_SIGNATURE
    tampered = bytearray(second)
    tampered[12] ^= 1
    assert verifier.check(tampered) is Reject.BAD_SIGNATURE
    assert verifier.check(first) is None
    assert verifier.check(first) is Reject.REPLAY
    assert verifier.check(second) is None
    assert verifier.check(first) is Reject.REPLAY  # older than the stream's last


def test_a_forged_far_future_timestamp_does_not_poison_the_stream() -> None:
    key = new_key()
    verifier = Verifier(key)
    forged = sign_frame(frame(), new_key(), 0, 2**47)
    assert forged is not None
    assert verifier.check(forged) is Reject.BAD_SIGNATURE
    genuine = Signer(key).sign(frame())
    assert genuine is not None
    assert verifier.check(genuine) is None


def test_a_new_stream_more_than_a_minute_behind_is_refused() -> None:
    key = new_key()
    verifier = Verifier(key)
    now = 10**12
    assert verifier.check(sign_frame(frame(compid=1), key, 0, now) or b"") is None
    old = sign_frame(frame(compid=2), key, 0, now - NEW_STREAM_WINDOW_TICKS - 1)
    assert verifier.check(old or b"") is Reject.REPLAY


def test_what_cannot_be_signed_is_said() -> None:
    key = new_key()
    v1 = mav.MAVLink_heartbeat_message(2, 12, 0, 0, 4, 3).pack(new_parser(1, 1), force_mavlink1=True)
    assert sign_frame(bytes(v1), key, 0, 1) is None
    assert sign_frame(b"\xfd\x05", key, 0, 1) is None
    unknown = bytearray(frame())
    unknown[7:10] = (0xFFFFFF).to_bytes(3, "little")
    assert sign_frame(bytes(unknown), key, 0, 1) is None
    with pytest.raises(ValueError):
        Signer(b"short")


def test_keystore_writes_0600_and_refuses_a_readable_or_bad_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    assert store.load(3) is None
    key = new_key()
    path = store.store(3, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.load(3) == key
    assert store.systems() == [3]
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        store.load(3)
    os.chmod(path, 0o600)
    path.write_text("zz")
    with pytest.raises(KeyFileError):
        store.load(3)
    with pytest.raises(ValueError):
        store.store(3, b"x" * 31)
    assert store.remove(3) and store.load(3) is None
