"""A frame's capture time drawn into its pixels, so latency can be measured glass to glass.

The simulated camera stamps every frame with the wall-clock time it rendered it (microseconds
since the Unix epoch) before encoding; whoever decodes the video (a test, the bench, a browser
page via a canvas) reads it back with :func:`read_capture_time_us` and subtracts it from its own
clock. Needs numpy only (no OpenCV), so the service and the bench can import it.

Layout, along the top edge of the frame, in square blocks of ``width // 80`` pixels (16 px at
1280x720: one H.264 macroblock each, so compression keeps them clean):

    [sync: white black white black][64 bits of the time, big-endian][8 bits of CRC-8]

White is a 1 bit. 76 blocks span 1216 of 1280 pixels. The reader samples the middle half of each
block, insists on clear black or white and checks the sync pattern and the CRC, so a frame
without a code (or a torn one) reads as ``None`` rather than as a wrong time.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCKS_PER_WIDTH = 80
SYNC_BITS = (1, 0, 1, 0)
TIME_BITS = 64
CRC_BITS = 8
CODE_BLOCKS = len(SYNC_BITS) + TIME_BITS + CRC_BITS  # 76
MIN_BLOCK_PX = 4
WHITE_ABOVE = 170.0
BLACK_BELOW = 85.0

Frame = npt.NDArray[np.uint8]


def crc8(data: bytes) -> int:
    """CRC-8 with polynomial 0x07 (CRC-8/SMBUS)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def block_px(width_px: int) -> int:
    return width_px // BLOCKS_PER_WIDTH


def code_bits(time_us: int) -> list[int]:
    """The 76 bits drawn for ``time_us`` (sync, time, CRC)."""
    if not 0 <= time_us < 1 << TIME_BITS:
        raise ValueError("capture time must fit in 64 unsigned bits")
    payload = time_us.to_bytes(8, "big")
    value = (time_us << CRC_BITS) | crc8(payload)
    bits = [(value >> shift) & 1 for shift in range(TIME_BITS + CRC_BITS - 1, -1, -1)]
    return [*SYNC_BITS, *bits]


def draw_capture_time(frame: Frame, time_us: int) -> None:
    """Draw the code for ``time_us`` into ``frame`` (H x W x 3 or H x W, uint8) in place."""
    block = block_px(frame.shape[1])
    if block < MIN_BLOCK_PX or frame.shape[0] < block:
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is too small for the time code")
    levels = np.array(code_bits(time_us), dtype=np.uint8) * 255
    row = np.repeat(levels, block)
    if frame.ndim == 3:
        frame[:block, : row.size] = row[np.newaxis, :, np.newaxis]
    else:
        frame[:block, : row.size] = row[np.newaxis, :]


def read_capture_time_us(frame_bgr: Frame) -> int | None:
    """The capture time drawn in ``frame_bgr`` (microseconds since the epoch), or None if unreadable."""
    if frame_bgr.ndim not in (2, 3):
        return None
    height, width = frame_bgr.shape[:2]
    block = block_px(width)
    if block < MIN_BLOCK_PX or height < block:
        return None
    inner = slice(block // 4, block - block // 4)
    strip = frame_bgr[inner, : CODE_BLOCKS * block]
    if frame_bgr.ndim == 3:
        strip = strip.reshape(strip.shape[0], CODE_BLOCKS, block, strip.shape[2])[:, :, inner, :]
        levels = strip.mean(axis=(0, 2, 3))
    else:
        strip = strip.reshape(strip.shape[0], CODE_BLOCKS, block)[:, :, inner]
        levels = strip.mean(axis=(0, 2))
    if np.any((levels > BLACK_BELOW) & (levels < WHITE_ABOVE)):
        return None  # a grey block: no code here, or damaged
    bits = [1 if level >= WHITE_ABOVE else 0 for level in levels.tolist()]
    if tuple(bits[: len(SYNC_BITS)]) != SYNC_BITS:
        return None
    value = 0
    for bit in bits[len(SYNC_BITS) :]:
        value = (value << 1) | bit
    time_us, check = value >> CRC_BITS, value & 0xFF
    if crc8(time_us.to_bytes(8, "big")) != check:
        return None
    return time_us
