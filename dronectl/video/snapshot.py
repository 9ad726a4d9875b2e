"""A JPEG of a stream's latest keyframe, decoded only when someone asks (never per frame)."""

from __future__ import annotations

import av
import cv2

from adapters.protocols import AccessUnit

JPEG_QUALITY = 85


def keyframe_to_jpeg(keyframe: AccessUnit, quality: int = JPEG_QUALITY) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of ``keyframe``. CPU-bound: run it off the event loop."""
    decoder = av.CodecContext.create("h264", "r")
    frames = decoder.decode(av.Packet(keyframe.data)) + decoder.decode(None)
    if not frames:
        raise ValueError("the keyframe did not decode")
    image = frames[0].to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return jpeg.tobytes(), image.shape[1], image.shape[0]
