"""Why a video request cannot be served, in words an operator understands."""

from __future__ import annotations

from dronectl.domain.errors import DronectlError


class VideoError(DronectlError):
    """Root of the video side's refusals."""


class UnknownNest(VideoError):
    def __init__(self, nest_id: int) -> None:
        self.nest_id = nest_id
        super().__init__(f"no nest {nest_id}")


class NotWatchable(VideoError):
    """The nest has no live video to offer now (on the ground, or its camera is not attached)."""


class CameraUnavailable(VideoError):
    """The camera did not start streaming (refused, silent, or its link is down)."""


class BadOffer(VideoError):
    """The viewer's SDP offer cannot be answered (unparsable, or no H.264 video)."""
