"""The instants the tests pin the service's calendar at (``dronectl.domain.clock``), never the machine's.

Fixtures that run the patrol service (or anything reading the time of day) on the shipped city
config start its clock at ``QUIET``, when no schedule of the shipped config is open (a Sunday
afternoon in Changchun), so that nests stay docked and ready whatever the hour of the run. Tests
of the schedules pin ``RUSH_HOUR`` or ``WINTER_MORNING`` on purpose.
"""

from __future__ import annotations

from dronectl.domain.clock import parse_instant

QUIET = "2026-12-06T14:00:00+08:00"  # Sunday 14:00 in Changchun: no window of the shipped config
RUSH_HOUR = "2026-12-03T08:15:00+08:00"  # Thursday 08:15: the morning rush (07:00-09:00)
WINTER_MORNING = "2026-12-13T06:00:00+08:00"  # Sunday 06:00 in December: black ice (05:00-07:30)

QUIET_UNIX_S = parse_instant(QUIET)
