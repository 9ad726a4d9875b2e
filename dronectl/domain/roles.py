"""Who may do what: the roles, the methods, and which role may call which. Pure; no I/O.

The role a command runs with is never what a message claims: it is the role the users file gives
the authenticated user (``dronectl users``), or ``automation`` for the service's own automations.
The same table serves every channel (MQTT, HTTP, the console) and the broker-side ACL.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    OBSERVER = "observer"  # reads everything, commands nothing
    PILOT = "pilot"  # flies drones and uses their payload
    COMMANDER = "commander"  # everything a pilot does, plus fleet orders and maintenance
    AUTOMATION = "automation"  # automated missions: flight and payload, no manual control
    REPORTER = "reporter"  # reports incidents (a command-center system), commands nothing


class Method(StrEnum):
    # nest methods: {root}/nests/{nest}/commands/{user}
    LAUNCH = "launch"
    GOTO = "goto"
    ORBIT = "orbit"
    HOLD = "hold"
    RETURN_HOME = "return_home"
    LAND = "land"
    ABORT = "abort"
    SPEAKER_SAY = "speaker.say"
    SPEAKER_STOP = "speaker.stop"
    LIGHT_SET = "light.set"
    CONTROL_TAKE = "control.take"
    CONTROL_RELEASE = "control.release"
    MAINTENANCE_SET = "maintenance.set"
    # fleet methods: {root}/commands/{user}
    RETURN_ALL = "return_all"
    INCIDENT_CONFIRM = "incident.confirm"  # a commander's go for a proposed incident dispatch
    PATROL_START = "patrol.start"  # start a patrol mission over a configured road stretch
    PATROL_STOP = "patrol.stop"  # end a patrol mission (its drone flies home)
    PATROL_LIST = "patrol.list"  # the patrol missions, active and recent


class Channel(StrEnum):
    """How a command reached the service (the audit's ``channel``). The console is a client of
    the MQTT API: its requests say ``"client": "console"`` and are recorded as ``console``. That is
    the client's own word (any MQTT client could say it; the broker cannot tell client programs
    apart), so the channel is information, never identity or authority: who sent it is always the
    user the broker authenticated, and what it may do that user's role."""

    MQTT = "mqtt"
    HTTP = "http"
    CONSOLE = "console"  # by MQTT, from dronectl's console (its word: informational)
    AUTOMATION = "automation"  # in-process: dispatch, patrols, lookout


_FLIGHT = frozenset({Method.LAUNCH, Method.GOTO, Method.ORBIT, Method.HOLD, Method.RETURN_HOME, Method.LAND})
_PAYLOAD = frozenset({Method.SPEAKER_SAY, Method.SPEAKER_STOP, Method.LIGHT_SET})
_MANUAL = frozenset({Method.ABORT, Method.CONTROL_TAKE, Method.CONTROL_RELEASE})
# a pilot starts and stops patrols as a commander does; the missions fly as the automation
_PATROLS = frozenset({Method.PATROL_START, Method.PATROL_STOP, Method.PATROL_LIST})

PERMISSIONS: Mapping[Role, frozenset[Method]] = {
    Role.OBSERVER: frozenset(),
    Role.PILOT: _FLIGHT | _PAYLOAD | _MANUAL | _PATROLS,
    Role.COMMANDER: frozenset(Method),
    Role.AUTOMATION: _FLIGHT | _PAYLOAD,
    Role.REPORTER: frozenset(),
}

# who may report an incident (which may launch a drone on its own): not a pilot or an observer
INCIDENT_REPORTERS: frozenset[Role] = frozenset({Role.COMMANDER, Role.AUTOMATION, Role.REPORTER})


def may_call(role: Role, method: Method) -> bool:
    return method in PERMISSIONS[role]


def roles_for(method: Method) -> list[Role]:
    return [role for role in Role if may_call(role, method)]


def may_report_incident(role: Role) -> bool:
    return role in INCIDENT_REPORTERS
