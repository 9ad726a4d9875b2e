"""MAVLink messages and parsers of our dialect, one parser per link (no process-global state)."""

from __future__ import annotations

from typing import Any, TypeAlias

from adapters.mavlink import dronectl_v20 as mav

# pymavlink's messages carry their fields as dynamic attributes, which no type checker can see.
MAVLinkMessage: TypeAlias = Any


def new_parser(system_id: int = 0, component_id: int = 0) -> mav.MAVLink:
    """A parser/encoder of our dialect that turns garbage into BAD_DATA instead of raising."""
    parser = mav.MAVLink(None, srcSystem=system_id, srcComponent=component_id)
    parser.robust_parsing = True
    return parser
