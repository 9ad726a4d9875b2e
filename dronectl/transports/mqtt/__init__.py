"""The MQTT API: the contract with command-center software (topics, payloads, roles, dispatch).

- :mod:`dronectl.operations.models`: pydantic models of every payload.
- :mod:`dronectl.operations.topics`: the topic tree and strict parsing of incoming topics.
- :mod:`dronectl.operations.roles`: who may call what, and the matching Mosquitto ACL file.
- :mod:`dronectl.operations.requests`: pure request handling (validation, expiry, roles, dedupe).
- :mod:`dronectl.operations.port`: the small interface the controller offers the API.
- :mod:`dronectl.transports.mqtt.mqtt`: the asyncio side (aiomqtt): connect, reconnect, publish, receive.
- :mod:`dronectl.transports.mqtt.broker`: the embedded broker used when none is configured.
- :mod:`dronectl.transports.mqtt.asyncapi`: the AsyncAPI 3 document and JSON Schemas
  (``python -m ...asyncapi``).
"""
