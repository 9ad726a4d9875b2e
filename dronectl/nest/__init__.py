"""One nest under control, over the ``adapters/`` Protocols.

``controller``: :class:`NestController`, put together from ``core`` (state machine, events,
flights, snapshot), ``telemetry`` (the watchers), ``flight_ops`` (launch, go to, orbit, hold,
return, land, abort), ``guard`` (the in-flight guard) and ``payload`` (speaker, light);
``types``: the data it keeps; ``fleet``: every nest of the city
and ``service.open_service`` (hardware, audit store, supervised controllers); ``supervisor``:
restart with back-off; ``tts`` and ``speech_clips``: speech for the loudspeaker.
"""
