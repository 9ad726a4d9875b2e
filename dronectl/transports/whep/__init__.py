"""WHEP: the nests' live video to WebRTC viewers (``routes.add_video_routes``), with talk-back.

``offer`` and ``whep``: signalling and sessions; ``track``: H.264 passed through to aiortc;
``liveness``: a viewer gone without DELETE.
"""

from dronectl.transports.whep.routes import add_video_routes

__all__ = ["add_video_routes"]
