"""Whether a WHEP session's viewer is still there: a pure verdict from what the session saw.

A viewer that leaves without DELETE (tab killed, network gone, ICE never completing) must not
hold the nest's ingest. aiortc ends a session's peer connection on a DTLS close or, after about
30 s, when ICE consent expires; the service decides sooner, from two observations:

- never connected: the viewer's ICE/DTLS did not complete within ``connect_timeout_s`` of the
  answer (its candidates unreachable, or it never tried);
- silent: a WebRTC receiver sends RTCP receiver reports about once a second while it gets RTP;
  none for ``silence_timeout_s`` after video went out to it means it is gone. The silence is
  counted from the first frame sent after its last report: when the service sent nothing (the
  camera paused, or is starting), silence proves nothing and the session is kept.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LivenessSettings:
    connect_timeout_s: float = 15.0
    silence_timeout_s: float = 10.0
    check_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if min(self.connect_timeout_s, self.silence_timeout_s, self.check_interval_s) <= 0:
            raise ValueError("liveness timeouts and the check interval must be positive")


@dataclass(frozen=True)
class PeerObservation:
    open_s: float  # since the answer was given
    connected: bool  # the peer connection reached "connected"
    silent_s: float  # since the first frame sent after the viewer's last receiver report (0: none sent)
    units_sent_while_silent: int  # video access units sent to it since that report


def lost_reason(seen: PeerObservation, settings: LivenessSettings) -> str | None:
    """Why the viewer is taken as gone, or None while it may still be there."""
    if not seen.connected:
        if seen.open_s >= settings.connect_timeout_s:
            return f"the viewer did not connect within {settings.connect_timeout_s:g} s (ICE/DTLS)"
        return None
    if seen.silent_s >= settings.silence_timeout_s and seen.units_sent_while_silent > 0:
        return (
            f"the viewer sent no receiver report for {seen.silent_s:.0f} s while "
            f"{seen.units_sent_while_silent} video frames were sent to it"
        )
    return None
