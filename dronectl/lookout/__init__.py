"""The lookout: a drone's video watched for black ice, and the automation's response to it.

- ``pose``: where the camera was and which way it looked at a frame's capture time (pure).
- ``findings``: a sighting in one frame, and consecutive frames that make a finding (pure).
- ``lookout``: :class:`Lookout`: ice findings from a nest's video, traffic readings.
- ``response``: what the drone does about a finding (hold, lights, warning, events), audited.
- ``snapshots``, ``routes``: the pictures kept as evidence, and ``GET /snapshots/{id}.jpg``.
"""

from dronectl.lookout.findings import GroundFinding
from dronectl.lookout.lookout import Lookout, LookoutError
from dronectl.lookout.response import IceResponse, ResponseStep
from dronectl.lookout.routes import add_snapshot_routes
from dronectl.lookout.snapshots import SnapshotStore

__all__ = [
    "GroundFinding",
    "IceResponse",
    "Lookout",
    "LookoutError",
    "ResponseStep",
    "SnapshotStore",
    "add_snapshot_routes",
]
