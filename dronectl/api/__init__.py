"""The MQTT API: the contract with command-center software (topics, payloads, roles, dispatch).

- :mod:`dronectl.api.models`: pydantic models of every payload.
- :mod:`dronectl.api.topics`: the topic tree and strict parsing of incoming topics.
- :mod:`dronectl.api.roles`: who may call what, and the matching Mosquitto ACL file.
- :mod:`dronectl.api.dispatch`: pure request handling (validation, expiry, roles, dedupe).
- :mod:`dronectl.api.controller`: the small interface the controller offers the API.
- :mod:`dronectl.api.mqtt`: the asyncio side (aiomqtt): connect, reconnect, publish, receive.
- :mod:`dronectl.api.broker`: the embedded broker used when none is configured.
- :mod:`dronectl.api.asyncapi`: the AsyncAPI 3 document and JSON Schemas (``python -m ...asyncapi``).
"""
