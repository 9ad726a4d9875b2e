"""The HTTP side of the service: the command-center page, REST and WebSocket API, auth."""
