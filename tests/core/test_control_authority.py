"""Manual control of a nest: take, refuse others naming the holder, take over, release, expire."""

from __future__ import annotations

import pytest

from dronectl.domain.control_authority import ChangeKind, ControlAuthority


def test_nobody_holds_a_nest_at_first_and_anyone_may_command_it() -> None:
    auth = ControlAuthority()
    assert auth.holder(3, 0.0) is None
    assert auth.check(3, "anyone", 0.0).allowed


def test_a_pilot_takes_control_and_others_are_refused_naming_the_holder() -> None:
    auth = ControlAuthority()
    verdict = auth.take(3, "pilot-li", "pilot", 10.0)
    assert verdict.allowed and verdict.change is not None
    assert verdict.change.kind is ChangeKind.TAKEN and verdict.change.previous is None
    held = auth.holder(3, 11.0)
    assert held is not None and held.actor_id == "pilot-li" and held.since_s == 10.0
    assert auth.check(3, "pilot-li", 11.0).allowed
    other = auth.check(3, "pilot-wang", 11.0)
    assert not other.allowed and "pilot-li (pilot)" in (other.refusal or "")
    assert auth.check(4, "pilot-wang", 11.0).allowed  # other nests are free


def test_a_second_pilot_cannot_take_control_from_the_first() -> None:
    auth = ControlAuthority()
    auth.take(3, "pilot-li", "pilot", 0.0)
    verdict = auth.take(3, "pilot-wang", "pilot", 1.0)
    assert not verdict.allowed and "pilot-li" in (verdict.refusal or "")
    held = auth.holder(3, 1.0)
    assert held is not None and held.actor_id == "pilot-li"


def test_a_commander_takes_over_and_the_previous_holder_is_named_in_the_change() -> None:
    auth = ControlAuthority()
    auth.take(3, "pilot-li", "pilot", 0.0)
    verdict = auth.take(3, "cmdr-zhao", "commander", 5.0)
    assert verdict.allowed and verdict.change is not None
    assert verdict.change.kind is ChangeKind.TAKEN_OVER
    assert verdict.change.previous is not None and verdict.change.previous.actor_id == "pilot-li"
    assert "taken over by cmdr-zhao (commander) from pilot-li (pilot)" in verdict.change.describe()
    assert not auth.check(3, "pilot-li", 6.0).allowed


@pytest.mark.parametrize("role", ["automation", "observer"])
def test_automation_and_observers_never_take_control(role: str) -> None:
    auth = ControlAuthority()
    assert not auth.take(3, "bot", role, 0.0).allowed
    auth.take(3, "pilot-li", "pilot", 0.0)
    assert not auth.take(3, "bot", role, 1.0).allowed
    assert not auth.check(3, "bot", 1.0).allowed  # automation never overrides a pilot


def test_release_by_the_holder_and_by_a_commander_but_not_by_another_pilot() -> None:
    auth = ControlAuthority()
    auth.take(3, "pilot-li", "pilot", 0.0)
    refused = auth.release(3, "pilot-wang", "pilot", 1.0)
    assert not refused.allowed and auth.holder(3, 1.0) is not None
    released = auth.release(3, "pilot-li", "pilot", 2.0)
    assert released.change is not None and released.change.kind is ChangeKind.RELEASED
    assert auth.holder(3, 2.0) is None
    assert auth.release(3, "pilot-li", "pilot", 3.0).allowed  # nothing to release: no change
    assert auth.release(3, "pilot-li", "pilot", 3.0).change is None

    auth.take(3, "pilot-li", "pilot", 4.0)
    forced = auth.release(3, "cmdr-zhao", "commander", 5.0)
    assert forced.change is not None and forced.change.kind is ChangeKind.RELEASED_BY_OTHER
    assert auth.holder(3, 5.0) is None


def test_control_expires_after_inactivity_and_commands_keep_it_alive() -> None:
    auth = ControlAuthority(idle_release_s=300.0)
    auth.take(3, "pilot-li", "pilot", 0.0)
    auth.touch(3, "pilot-li", 200.0)  # a command at 200 s
    auth.touch(3, "pilot-wang", 250.0)  # not the holder: does not count
    assert auth.expire(499.0) == []
    assert auth.holder(3, 499.0) is not None
    assert auth.holder(3, 500.0) is None  # idle 300 s: gone, even before expire() runs
    assert auth.check(3, "pilot-wang", 500.0).allowed
    [change] = auth.expire(500.0)
    assert change.kind is ChangeKind.EXPIRED and change.previous is not None
    assert change.previous.actor_id == "pilot-li"
    assert auth.expire(501.0) == []


def test_taking_again_refreshes_the_holder() -> None:
    auth = ControlAuthority(idle_release_s=10.0)
    auth.take(3, "pilot-li", "pilot", 0.0)
    again = auth.take(3, "pilot-li", "pilot", 9.0)
    assert again.allowed and again.change is None
    assert auth.holder(3, 18.0) is not None
    held = auth.holder(3, 18.0)
    assert held is not None and held.since_s == 0.0


def test_idle_release_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ControlAuthority(idle_release_s=0.0)
