"""amqtt plugins for the embedded broker: the users file for logins, and the ACL of roles.py.

amqtt's own FileAuthPlugin reads argon2/sha512-crypt hashes, not Mosquitto's ``$7$`` PBKDF2, and
its ACL plugin has no ``%u``; these two small plugins on amqtt's plugin API do what a Mosquitto
started from docker/mosquitto.conf does with the same files:

- :class:`UsersFileAuth`: a client must give a user name and the right password (no anonymous
  connections); the file is reread when it changes; every refused login is logged and audited
  (``login_audit``: an :class:`~dronectl.operations.login_audit.LoginAudit`, bursts folded), and
  after 5 failures for a user name within a minute its logins are refused unchecked until that passes.
- :class:`OwnTopicsAcl`: each user writes commands and incidents only under its own name and
  reads the public tree and its own replies (``dronectl.operations.roles.allowed``); the service's
  account reads and writes everything. A refused publish is dropped (MQTT 3.1.1 cannot say no to
  a QoS 1 publish); as in Mosquitto any subscription is accepted and each message is checked on
  its way to each subscriber, so ``dronectl/v1/nests/3/#`` brings what the user may read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from amqtt.contexts import Action  # type: ignore[import-untyped]  # amqtt ships no type information
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin  # type: ignore[import-untyped]

from dronectl.domain.identity import LoginThrottle
from dronectl.operations.login_audit import LoginAudit
from dronectl.operations.roles import allowed
from dronectl.operations.topics import DEFAULT_ROOT
from dronectl.operations.users import Directory

log = structlog.get_logger("dronectl.transports.mqtt.broker")


class UsersFileAuth(BaseAuthPlugin):
    @dataclass
    class Config:
        users_file: str = ""
        login_audit: Any = None  # a LoginAudit (an object: amqtt passes it through as given)

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.directory = Directory(Path(self.config.users_file))
        self.throttle = LoginThrottle(max_failures=5, window_s=60.0)
        audit = self.config.login_audit
        self.login_audit: LoginAudit | None = audit if isinstance(audit, LoginAudit) else None

    async def _refused(self, session: Any, name: str, reason: str) -> bool:
        address = getattr(session, "remote_address", None)
        log.warning("broker.login_refused", user=name, remote=address, reason=reason)
        if self.login_audit is not None:
            await self.login_audit.failed("mqtt", name, address, reason)
        return False

    async def authenticate(self, *, session: Any) -> bool:
        username = getattr(session, "username", None)
        password = getattr(session, "password", None) or ""
        if not username:
            return await self._refused(session, "", "anonymous")
        name = str(username)[:64]
        now_s = time.monotonic()
        if not self.throttle.allowed(name, now_s):  # guessing: not even checked for a while
            return await self._refused(session, name, "too many failed logins; wait a minute")
        try:
            user = await self.directory.authenticate_off_loop(str(username), str(password))
        except (OSError, ValueError) as exc:  # a broken users file: nobody gets in; logged
            log.error("broker.users_file_unreadable", error=str(exc))
            return False
        if user is None:
            self.throttle.failed(name, now_s)
            return await self._refused(session, name, "unknown user or wrong password")
        self.throttle.succeeded(name)
        return True


class OwnTopicsAcl(BaseTopicPlugin):
    @dataclass
    class Config:
        root: str = DEFAULT_ROOT

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        username = getattr(session, "username", None)
        if not username or not topic:
            return False
        if action == Action.SUBSCRIBE:
            return True  # as Mosquitto: any filter; each message is checked on delivery (RECEIVE)
        access = "write" if action == Action.PUBLISH else "read"
        ok = allowed(self.config.root, str(username), access, topic)
        if not ok and action == Action.PUBLISH:  # RECEIVE: a wide subscription meets others' topics
            log.warning("broker.acl_refused", user=str(username), access=access, topic=topic)
        return ok
