"""The simulated camera of a nest's drone: synthetic aerial video over RTP, MAVLink camera protocol.

- ``component``: the MAVLink component (id 100) and its stream lifecycle.
- ``stream``: the render/encode/send thread of one live stream.
- ``render``: the OpenCV renderer; ``city``: the procedural city; ``scene``: what scenarios add.
- ``encoder``: H.264 with libx264 (PyAV).
The capture-time pixel code is ``adapters.camera_timecode``; RTP packetizing is ``adapters.rtp_h264``.
"""

from sitl.camera.component import VIDEO_PORT_BASE, SimCamera
from sitl.camera.scene import IceStretch, Incident, NestMarker, SceneSnapshot, SceneState, SlowTraffic

__all__ = [
    "VIDEO_PORT_BASE",
    "IceStretch",
    "Incident",
    "NestMarker",
    "SceneSnapshot",
    "SceneState",
    "SimCamera",
    "SlowTraffic",
]
