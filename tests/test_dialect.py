"""The checked-in dialect module is what mavgen builds from dronectl.xml today."""

from __future__ import annotations

from pathlib import Path

from adapters.mavlink import dronectl_v20 as mav
from adapters.mavlink.generate import OUTPUT, generate
from adapters.mavlink.text import encode_utf8, utf8_field


def test_generated_module_is_fresh(tmp_path: Path) -> None:
    fresh = generate(tmp_path / "dronectl_v20.py")
    assert OUTPUT.read_text() == fresh, "run: python -m adapters.mavlink.generate"


def test_dialect_round_trip_with_own_parser_per_link() -> None:
    sender = mav.MAVLink(None, srcSystem=3, srcComponent=25)
    frame = mav.MAVLink_dock_weather_message(1_000_000, 7.5, 11.0, 290.0, -8.0, -11.5, 92.0, 1.2, 2).pack(
        sender
    )
    parser = mav.MAVLink(None)
    [msg] = parser.parse_buffer(frame)
    assert msg.get_type() == "DOCK_WEATHER"
    assert (msg.get_srcSystem(), msg.get_srcComponent()) == (3, 25)
    assert msg.road_temperature == -11.5 and msg.precipitation_type == mav.PRECIPITATION_SNOW
    assert mav.MAV_RESULT_COMMAND_UNSUPPORTED_MAV_FRAME == 9


def test_speaker_text_carries_mandarin() -> None:
    text = "前方路面结冰，请减速慢行"
    sender = mav.MAVLink(None, srcSystem=255, srcComponent=190)
    frame = mav.MAVLink_speaker_play_text_message(3, 158, 7, 80, 1, b"zh", text.encode()).pack(sender)
    [msg] = mav.MAVLink(None).parse_buffer(frame)
    assert utf8_field(msg, "text") == text
    assert utf8_field(msg, "lang") == "zh"


def test_utf8_cut_never_splits_a_character() -> None:
    assert encode_utf8("结冰", 4).decode() == "结"
    assert encode_utf8("ice", 200) == b"ice"
