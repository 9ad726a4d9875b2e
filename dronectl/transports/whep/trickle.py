"""Trickle ICE for WHEP: the ``application/trickle-ice-sdpfrag`` body of a PATCH (RFC 8840, as
WHIP/WHEP use it, RFC 9725 section 4.3), parsed and checked; pure, no I/O.

A viewer that sends its offer before its ICE gathering is done PATCHes its later candidates to
the session's URL. The fragment names the ICE credentials of the offer it belongs to; other
credentials mean an ICE restart, which this service does not do (the viewer opens a new session),
and which the draft answers with 422 for a server that trickles but does not restart.
"""

from __future__ import annotations

from dataclasses import dataclass

SDPFRAG = "application/trickle-ice-sdpfrag"
MAX_CANDIDATES = 64  # per PATCH: a browser gathers a handful per interface


class BadFragment(ValueError):
    """The PATCH body is not a trickle-ICE fragment this session can use (400)."""


class IceRestart(ValueError):
    """The fragment carries other ICE credentials than the session's offer (422)."""


@dataclass(frozen=True)
class TrickleCandidate:
    mid: str | None
    mline_index: int
    candidate: str  # the attribute's value, "candidate:..." without "a="


@dataclass(frozen=True)
class Fragment:
    ufrag: str
    candidates: tuple[TrickleCandidate, ...]
    end_of_candidates: bool


def offer_ufrag(offer_sdp: str) -> str | None:
    """The ICE username fragment of an SDP offer (session level or first media)."""
    for line in offer_sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.removeprefix("a=ice-ufrag:").strip()
    return None


def parse_fragment(body: str, session_ufrag: str | None) -> Fragment:
    """The candidates of a PATCH body; raises ``BadFragment`` or ``IceRestart``."""
    ufrag: str | None = None
    mid: str | None = None
    mline = -1
    candidates: list[TrickleCandidate] = []
    end = False
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.removeprefix("a=ice-ufrag:").strip()
        elif line.startswith(("a=ice-pwd:", "a=group:", "a=ice-options:")):
            continue
        elif line.startswith("m="):
            mline += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line.removeprefix("a=mid:").strip()
        elif line.startswith("a=candidate:"):
            if mline < 0:
                raise BadFragment("a candidate before any m= line")
            value = line.removeprefix("a=")
            fields = value.removeprefix("candidate:").split()
            if len(fields) < 8 or fields[6] != "typ" or not fields[1].isdigit() or not fields[5].isdigit():
                raise BadFragment(f"not an ICE candidate: {line[:120]!r}")
            candidates.append(TrickleCandidate(mid, mline, value))
            if len(candidates) > MAX_CANDIDATES:
                raise BadFragment(f"more than {MAX_CANDIDATES} candidates in one PATCH")
        elif line == "a=end-of-candidates":
            end = True
        else:
            raise BadFragment(f"unexpected line in a trickle-ICE fragment: {line[:120]!r}")
    if ufrag is None:
        raise BadFragment("the fragment has no a=ice-ufrag line")
    if session_ufrag is not None and ufrag != session_ufrag:
        raise IceRestart("ICE restart is not supported: open a new session (POST a new offer)")
    return Fragment(ufrag, tuple(candidates), end)
