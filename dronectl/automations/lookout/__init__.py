"""The lookout: a drone's video watched for black ice, and the automation's response to it.

- ``pose``: where the camera was and which way it looked at a frame's capture time (pure).
- ``findings``: a sighting in one frame, and consecutive frames that make a finding (pure).
- ``lookout``: :class:`Lookout`: ice findings from a nest's video, traffic readings.
- ``response``: what the drone does about a finding (hold, lights, warning, events), audited.
- ``snapshots``: the pictures kept as evidence (served by ``dronectl.transports.web.snapshots``).
"""

from dronectl.automations.lookout.findings import GroundFinding
from dronectl.automations.lookout.lookout import Lookout, LookoutError
from dronectl.automations.lookout.response import IceResponse, ResponseStep
from dronectl.automations.lookout.snapshots import SnapshotStore

__all__ = [
    "GroundFinding",
    "IceResponse",
    "Lookout",
    "LookoutError",
    "ResponseStep",
    "SnapshotStore",
]
