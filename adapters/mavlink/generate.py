"""Build ``adapters/mavlink/dronectl_v20.py`` from ``dronectl.xml`` with pymavlink's mavgen.

Run ``python -m adapters.mavlink.generate`` after editing the XML; ``tests/test_dialect.py``
fails while the checked-in module is stale.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from pymavlink.generator import mavgen

HERE = Path(__file__).resolve().parent
XML = HERE / "dronectl.xml"
OUTPUT = HERE / "dronectl_v20.py"
HEADER = "# GENERATED FILE, do not edit: python -m adapters.mavlink.generate (from dronectl.xml)\n"


def _pymavlink_xml_dir() -> Path:
    import pymavlink

    return Path(pymavlink.__file__).resolve().parent / "dialects" / "v20"


def generate(output: Path = OUTPUT) -> str:
    """Generate the dialect module into ``output`` and return its text."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for name in ("common.xml", "standard.xml", "minimal.xml"):
            shutil.copy(_pymavlink_xml_dir() / name, tmp_dir / name)
        xml = tmp_dir / "dronectl.xml"
        shutil.copy(XML, xml)
        target = tmp_dir / "dronectl_v20"
        opts = mavgen.Opts(
            output=str(target),
            wire_protocol=mavgen.mavparse.PROTOCOL_2_0,
            language="Python3",
            validate=True,
            strict_units=False,
        )
        if not mavgen.mavgen(opts, [str(xml)]):
            raise SystemExit("mavgen failed on dronectl.xml")
        text = HEADER + (tmp_dir / "dronectl_v20.py").read_text()
    output.write_text(text)
    return text


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
