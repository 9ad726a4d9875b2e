"""``dronectl keys``: provision a simulated nest over a declared trusted link, rotate its key,
and see the status; refusals are clear and change nothing."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path

from adapters.mavlink.keystore import KeyStore
from tests.sitl.test_cli import running_sim


async def keys(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dronectl.app.cli", "keys", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_provision_rotate_and_status(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    store = KeyStore(key_dir)
    common = ("--keys", str(key_dir))
    async with running_sim(
        sys.executable, "-m", "sitl", "--nests", "1", "--state-dir", str(tmp_path / "sitl")
    ) as (lines, _):
        link = lines[0]["mavsdk_url"]
        code, _, err = await keys(*common, "rotate", "1", "--link", link)
        assert code == 2 and "provision it first" in err
        code, _, err = await keys(*common, "provision", "1", "--link", link)
        assert code == 2 and "--trusted-link" in err
        assert store.load(1) is None
        code, out, err = await keys(*common, "provision", "1", "--trusted-link", "--link", link)
        assert code == 0, err
        first = store.load(1)
        assert first is not None and first.hex() not in out + err  # never printed
        assert stat.S_IMODE(store.path(1).stat().st_mode) == 0o600
        sim_key = (tmp_path / "sitl" / "nest01" / "mavlink" / "mavlink-key").read_bytes()[:32]
        assert sim_key == first
        code, _, err = await keys(*common, "provision", "1", "--trusted-link", "--link", link)
        assert code == 2 and "rotate" in err
        code, _, err = await keys(*common, "rotate", "1", "--link", link)
        assert code == 0, err
        second = store.load(1)
        assert second is not None and second != first
        sim_key = (tmp_path / "sitl" / "nest01" / "mavlink" / "mavlink-key").read_bytes()[:32]
        assert sim_key == second
    code, out, _ = await keys(*common, "status", "--json")
    assert code == 0
    rows = {row["nest"]: row for row in json.loads(out)}
    assert rows[1]["signs"] and rows[1]["policy"] == "required"
    assert not rows[2]["key"] and rows[2]["policy"] == "when_provisioned"
