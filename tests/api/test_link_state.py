"""A nest's state shows its MAVLink link's signing (issue 13): signed or not, the policy, what was
refused by reason, and the fault when the nest's own frames stop verifying; nothing before the
nest is attached."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from adapters.protocols import LinkSecurityStatus
from dronectl.domain.errors import LinkLost
from dronectl.operations import models as api
from dronectl.operations.views import _link, _signing_event


class Unattached:
    @property
    def hw(self) -> Any:
        raise LinkLost("state", 3, "nest not attached yet")


def controller(status: LinkSecurityStatus | None) -> Any:
    source = (lambda: status) if status is not None else None
    return SimpleNamespace(hw=SimpleNamespace(link_security=source))


def test_the_state_shows_a_signed_an_unsigned_and_a_faulty_link() -> None:
    signed = LinkSecurityStatus("required", True, True, 0.2, {"unsigned": 4, "wrong_peer": 15}, None)
    assert _link(controller(signed)) == api.LinkSecurity(
        signed=True,
        policy="required",
        rejected={"unsigned": 4, "wrong_peer": 15},
        fault=None,
        last_verified_s_ago=0.2,
    )
    unsigned = LinkSecurityStatus("when_provisioned", False, False, None, {}, None)
    shown = _link(controller(unsigned))
    assert shown is not None and not shown.signed and shown.policy == "when_provisioned"
    faulty = LinkSecurityStatus(
        "required", True, False, 12.0, {"bad_signature": 30}, "the nest's frames do not verify with its key"
    )
    shown = _link(controller(faulty))
    assert shown is not None and shown.fault is not None and "do not verify" in shown.fault
    assert _link(Unattached()) is None  # type: ignore[arg-type]
    assert _link(controller(None)) is None
    # It is part of the published state's schema.
    assert "link" in api.NestState.model_json_schema()["properties"]


def test_an_event_says_when_a_nest_starts_or_stops_signing() -> None:
    signed = api.LinkSecurity(signed=True, policy="required")
    unsigned = api.LinkSecurity(signed=False, policy="when_provisioned")
    faulty = api.LinkSecurity(signed=False, policy="required", fault="the nest's frames are not signed")
    assert _signing_event(None, signed) == "MAVLink link signed"
    assert _signing_event(None, unsigned) == "MAVLink link NOT signed (policy when_provisioned)"
    assert _signing_event(signed, signed) is None
    assert _signing_event(signed, faulty) == "MAVLink link no longer signed: the nest's frames are not signed"
    assert _signing_event(faulty, signed) == "MAVLink link signed"
    assert _signing_event(signed, None) is None
    assert api.EventKind.LINK_SIGNING.value == "link_signing"


def test_the_console_shows_an_unsigned_nest_plainly() -> None:
    from dronectl.transports.console.describe import status_text
    from dronectl.transports.console.fleet import FleetModel
    from tests.console.helpers import TOPICS, state

    faulty = api.LinkSecurity(
        signed=False,
        policy="required",
        rejected={"bad_signature": 3},
        fault="the nest's frames do not verify",
    )
    shown = state(3).model_copy(update={"link": faulty})
    text = status_text(shown)
    assert "mavlink: UNSIGNED, policy required, FAULT: the nest's frames do not verify" in text
    assert "refused bad_signature 3" in text
    model = FleetModel(TOPICS)
    model.apply(TOPICS.nest_state(3), shown.model_dump_json().encode())
    signed = state(5).model_copy(update={"link": api.LinkSecurity(signed=True, policy="required")})
    model.apply(TOPICS.nest_state(5), signed.model_dump_json().encode())
    rows = {row.nest_id: row for row in model.rows(shown.at)}
    assert rows[3].link == "unsg" and rows[5].link == "up"
