"""The trickle-ICE fragment of a WHEP PATCH, parsed and checked (pure)."""

from __future__ import annotations

import pytest

from dronectl.transports.whep.trickle import BadFragment, IceRestart, offer_ufrag, parse_fragment

CANDIDATE = "candidate:1 1 udp 2113937151 9f1c.local 54321 typ host generation 0"
FRAGMENT = (
    "a=ice-ufrag:abcd\r\na=ice-pwd:secretpassword\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
    f"a={CANDIDATE}\r\na=end-of-candidates\r\n"
)


def test_a_browsers_fragment_gives_its_candidates_by_mid() -> None:
    fragment = parse_fragment(FRAGMENT, "abcd")
    assert fragment.ufrag == "abcd"
    assert [(c.mid, c.mline_index, c.candidate) for c in fragment.candidates] == [("0", 0, CANDIDATE)]
    assert fragment.end_of_candidates


def test_other_credentials_are_an_ice_restart() -> None:
    with pytest.raises(IceRestart, match="open a new session"):
        parse_fragment(FRAGMENT, "other")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("a=ice-ufrag:abcd\r\na=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n", "before any m= line"),
        ("a=ice-ufrag:abcd\r\nm=video 9 X 0\r\na=candidate:1 1 udp\r\n", "not an ICE candidate"),
        ("a=ice-ufrag:abcd\r\nm=video 9 X 0\r\nv=0\r\n", "unexpected line"),
        ("m=video 9 X 0\r\na=end-of-candidates\r\n", "no a=ice-ufrag"),
        (
            "a=ice-ufrag:abcd\r\nm=video 9 X 0\r\n" + f"a={CANDIDATE}\r\n" * 65,
            "more than 64 candidates",
        ),
    ],
)
def test_what_is_not_a_fragment_is_refused_with_the_reason(body: str, reason: str) -> None:
    with pytest.raises(BadFragment, match=reason):
        parse_fragment(body, "abcd")


def test_the_ufrag_of_an_offer() -> None:
    assert offer_ufrag("v=0\r\nm=video 9 X 96\r\na=ice-ufrag:Zx9\r\na=ice-pwd:p\r\n") == "Zx9"
    assert offer_ufrag("v=0\r\n") is None
