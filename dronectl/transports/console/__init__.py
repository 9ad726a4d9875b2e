"""The pilot console: a client of the MQTT API (never of the service's internals).

- ``fleet``: what the console knows of the fleet, from the retained state, telemetry and events.
- ``client``: the MQTT client (aiomqtt): requests with ``reply_to``, replies and progress.
- ``commands``: the command registry (MAVProxy-style ``add_command``) and every command's parser.
- ``completion``: tab completion of commands, nest ids and arguments.
- ``outcome``: what a command came to, and the exit codes of the one-shot commands.
- ``panel``: the fleet panel, rendered with rich.
- ``interactive``: ``dronectl console`` (prompt_toolkit full-screen application).
- ``oneshot``: ``dronectl launch 7 --to 43.90,125.30 --json`` and the other one-shot commands.
"""
