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

from typing import TYPE_CHECKING

from sitl.component import MAVLinkMessage, Outbox
from sitl.link import NestLink

if TYPE_CHECKING:
    from sitl.nest import SimNest

GCS_REMOTE_PORT = 14550  # where every PX4 SITL instance's GCS link pushes (QGroundControl listens)


def attach_gcs_link(nest: SimNest, outboxes: list[Outbox]) -> NestLink | None:
    """Create the nest's GCS link when its site asks for one; mirror ``outboxes`` onto it (the
    first is the autopilot's)."""
    site = nest.site
    if site.gcs_bind is None:
        return None
    autopilot = nest.autopilot

    def dispatch(msg: MAVLinkMessage) -> None:
        autopilot.from_gcs_link = True
        try:
            nest._dispatch(msg)
        finally:
            autopilot.from_gcs_link = False

    link = NestLink(
        site.system_id, nest.clock, nest.ctx.faults, site.gcs_remote, dispatch, signing=nest.link.signing
    )
    mirrors = [outbox.mirror(link.transmit) for outbox in outboxes]
    autopilot.attach_gcs_link(mirrors[0])
    return link
