"""Live video: the nests' cameras to WebRTC viewers (WHEP), snapshots, and flight recordings.

- ``hub``: one ingest per nest, fanned out; ``track``: H.264 passed through to aiortc.
- WHEP signalling to viewers is a transport: :mod:`dronectl.transports.whep`.
- ``snapshot``: JPEG of the latest keyframe; ``recorder`` + ``video_file``: flight recordings.
- ``talkback``: a viewer's microphone to the drone's loudspeaker; ``talk_audit``: in the audit store.
- ``service``: ``open_video(fleet, recordings_dir)`` wires the hub and recorders to a fleet.
"""

from dronectl.video.hub import VideoHub
from dronectl.video.service import open_video
from dronectl.video.sources import FleetSources, VideoSources

__all__ = ["FleetSources", "VideoHub", "VideoSources", "open_video"]
