"""MAVLink ids dronectl uses: who we are on the link, and who is who inside a nest."""

from __future__ import annotations

from adapters.mavlink import dronectl_v20 as mav

# Our side. MAVSDK's ground-station identity is 245/190; dronectl's own pymavlink side (dock,
# payload, commands MAVSDK cannot send right) uses the same system with its own component id, so
# each has its own sequence numbers and every COMMAND_ACK names which of the two it answers.
GCS_SYSTEM_ID = 245
MAVSDK_COMPONENT_ID = mav.MAV_COMP_ID_MISSIONPLANNER  # 190
DRONECTL_COMPONENT_ID = mav.MAV_COMP_ID_USER2  # 26: private id, free on our side

# Components of a nest's system (the same as sitl.component's).
AUTOPILOT_COMPID = mav.MAV_COMP_ID_AUTOPILOT1  # 1
CAMERA_COMPID = mav.MAV_COMP_ID_CAMERA  # 100
DOCK_COMPID = mav.MAV_COMP_ID_USER1  # 25: MAVLink has no dock component id
PAYLOAD_COMPID = mav.MAV_COMP_ID_PERIPHERAL  # 158: loudspeaker + warning light

# What MAVSDK serves; everything else is for the pymavlink adapters. The camera is ours
# (adapters.mavlink.camera): MAVSDK's camera plugin is not used, and would only query 16 cameras.
MAVSDK_COMPONENTS = frozenset({AUTOPILOT_COMPID, mav.MAV_COMP_ID_GIMBAL})
