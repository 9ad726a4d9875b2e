"""Transports: how people and software reach the operations port.

``mqtt``: the MQTT API (aiomqtt client, embedded broker, AsyncAPI document); ``web``: the HTTP
server, command-center page and WebSocket; ``whep``: live video to WebRTC viewers; ``console``:
the pilot console (a client of the MQTT API, in its own process).
"""
