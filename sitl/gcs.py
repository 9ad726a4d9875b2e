"""A nest's optional second link, laid out and streamed like PX4 SITL's GCS link.

PX4 SITL instance *i* has two links a ground station can see (``px4-rc.mavlink``): the GCS link,
bound to 18570+i and pushing to 14550 (every instance to the same port) in mode Normal with the
50 Hz streams the rc script adds, and the API/offboard link, bound to 14580+i and pushing to
14540+i in mode Onboard. A nest's main link (``sitl.link.NestLink`` on ``site.bind`` ->
``site.remote``) is the one dronectl uses; it keeps PX4's Normal-mode default rates so the service
pays no more for it. With ``site.gcs_bind`` set, the nest also opens this GCS link: every
component's messages go out on it too (each with its own sequence counter, as on a second PX4
MAVLink instance), what arrives on it is handled like what arrives on the main link, and the
autopilot streams the recorded GCS-link message set at the recorded rates on it
(``telemetry.GCS_LINK_RATES_HZ``). SET_MESSAGE_INTERVAL and REQUEST_MESSAGE received on it act
on it alone.
"""

from __future__ import annotations

from collections.abc import Callable

from sitl.autopilot.px4 import Px4Autopilot
from sitl.clock import SimClock
from sitl.component import MAVLinkMessage, Outbox
from sitl.environment import Faults
from sitl.link import Address, NestLink
from sitl.signing import SimSigning

GCS_REMOTE_PORT = 14550  # where every PX4 SITL instance's GCS link pushes (QGroundControl listens)


def attach_gcs_link(
    system_id: int,
    remote: Address | None,
    clock: SimClock,
    faults: Faults,
    signing: SimSigning,
    autopilot: Px4Autopilot,
    dispatch: Callable[[MAVLinkMessage], None],
    outboxes: list[Outbox],
) -> NestLink:
    """The nest's GCS link: ``outboxes`` (the first is the autopilot's) mirrored onto it, what
    arrives on it handed to ``dispatch`` with the autopilot told it came in on this link."""

    def from_gcs(msg: MAVLinkMessage) -> None:
        autopilot.from_gcs_link = True
        try:
            dispatch(msg)
        finally:
            autopilot.from_gcs_link = False

    link = NestLink(system_id, clock, faults, remote, from_gcs, signing=signing)
    mirrors = [outbox.mirror(link.transmit) for outbox in outboxes]
    autopilot.attach_gcs_link(mirrors[0])
    return link
