"""What a nest's link accepts and how what leaves it is signed: one per nest endpoint.

The policy is per nest:

- ``required``: frames must verify with the nest's key; with no key nothing is accepted (the
  link is in fault: "no key"). The default once a nest has a key.
- ``when_provisioned``: as ``required`` when the nest has a key, unsigned traffic accepted when
  it has none (a real PX4 never provisioned keeps working). The default with no key.
- ``off``: nothing signed, nothing verified.

With a key, everything sent is signed and every frame received is verified (signature, link id,
per-stream timestamp: a replay is refused); what fails is dropped and counted by reason. After a
key rotation, frames still signed with the old key are accepted for ``ROTATION_GRACE_S`` (those
already on the way), never after.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Callable

from adapters.mavlink.signing import Reject, Signer, Verifier, is_signed
from adapters.protocols import LinkSecurityStatus

ROTATION_GRACE_S = 10.0
LINK_ID = 1  # ours; the nests' PX4 uses its instance number
FAULT_AFTER_S = 3.0  # rejected frames and nothing verified for this long: the link is in fault


class SigningPolicy(enum.StrEnum):
    REQUIRED = "required"
    WHEN_PROVISIONED = "when_provisioned"
    OFF = "off"


class LinkSecurity:
    def __init__(
        self,
        key: bytes | None = None,
        policy: SigningPolicy | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """``policy`` None: ``required`` with a key, ``when_provisioned`` without.
        ``on_change(signed)`` is called when the nest starts or stops signing."""
        self._explicit_policy = policy
        self._monotonic = monotonic
        self.on_change = on_change
        self._signer: Signer | None = None
        self._verifier: Verifier | None = None
        self._previous: tuple[Verifier, float] | None = None  # old key's verifier, until
        self.rejected: Counter[str] = Counter()
        self._last_verified: float | None = None
        self._last_rejected: tuple[Reject, float] | None = None
        self._signed = False
        self.tx_unsignable = 0
        # Since the last set_key: a frame of the nest verified with the new key (or, with no key,
        # an unsigned one accepted): the nest took the change.
        self.answered_since_key_change = False
        if key is not None:
            self._install(key)

    # configuration -------------------------------------------------------------------------------
    @property
    def policy(self) -> SigningPolicy:
        if self._explicit_policy is not None:
            return self._explicit_policy
        return SigningPolicy.REQUIRED if self._verifier is not None else SigningPolicy.WHEN_PROVISIONED

    @property
    def key(self) -> bytes | None:
        return self._signer.key if self._signer is not None else None

    @property
    def active(self) -> bool:
        """Whether we sign and verify (a key, and a policy other than ``off``)."""
        return self._signer is not None and self.policy is not SigningPolicy.OFF

    def set_key(self, key: bytes | None) -> None:
        """Install a new key (or none); the old one is still accepted for ``ROTATION_GRACE_S``."""
        if self._verifier is not None and key is not None:
            self._previous = (self._verifier, self._monotonic() + ROTATION_GRACE_S)
        else:
            self._previous = None
        self.answered_since_key_change = False
        if key is None:
            self._signer = self._verifier = None
            self._set_signed(False)
        else:
            self._install(key)

    def _install(self, key: bytes) -> None:
        self._signer = Signer(key, LINK_ID)
        self._verifier = Verifier(key)

    # traffic -------------------------------------------------------------------------------------
    def outgoing(self, frame: bytes) -> bytes | None:
        """``frame`` as it leaves: signed when the link is active; None when it cannot be signed."""
        if not self.active:
            return frame
        assert self._signer is not None
        signed = self._signer.sign(frame)
        if signed is None:
            self.tx_unsignable += 1
        return signed

    def incoming(self, frame: bytes | bytearray, from_peer: bool = True) -> Reject | None:
        """None when the frame is accepted; otherwise why not (and counted). A frame refused that
        did not come from the nest's address (``from_peer`` False) is counted but never makes the
        link look faulty: a stranger cannot put a nest in fault by sending it junk."""
        policy = self.policy
        if policy is SigningPolicy.OFF:
            return None
        if self._verifier is None:
            if policy is SigningPolicy.REQUIRED:
                return self._reject(Reject.NO_KEY, from_peer)
            if from_peer and not is_signed(frame):
                self.answered_since_key_change = True
            return None  # when provisioned: a nest with no key talks unsigned
        reason = self._verifier.check(frame)
        if reason is None:
            self.answered_since_key_change = True
        elif reason is Reject.BAD_SIGNATURE and self._previous is not None:
            verifier, until = self._previous
            if self._monotonic() <= until:
                reason = verifier.check(frame)
            else:
                self._previous = None
        if reason is not None:
            return self._reject(reason, from_peer)
        self._last_verified = self._monotonic()
        self._set_signed(True)
        return None

    def reject(self, reason: Reject) -> None:
        """Count a frame dropped for a reason found outside (wrong system, wrong peer, malformed)."""
        self.rejected[reason] += 1

    def _reject(self, reason: Reject, from_peer: bool) -> Reject:
        self.rejected[reason] += 1
        if from_peer:
            self._last_rejected = (reason, self._monotonic())
        return reason

    def _set_signed(self, signed: bool) -> None:
        if signed != self._signed:
            self._signed = signed
            if self.on_change is not None:
                self.on_change(signed)

    # what the state shows ------------------------------------------------------------------------
    def fault(self) -> str | None:
        """Why the nest's frames are refused, when they are and none verified lately."""
        if self._last_rejected is None:
            return None
        reason, at = self._last_rejected
        now = self._monotonic()
        if now - at > FAULT_AFTER_S:
            return None  # nothing refused lately
        if self._last_verified is not None and now - self._last_verified < FAULT_AFTER_S:
            return None  # the nest's own frames verify; what is refused comes from elsewhere
        words = {
            Reject.UNSIGNED: "the nest's frames are not signed",
            Reject.BAD_SIGNATURE: "the nest's frames do not verify with its key",
            Reject.REPLAY: "the nest's frames are replays (timestamps not increasing)",
            Reject.NO_KEY: "signing is required and no key is provisioned",
        }
        return words.get(reason, f"frames refused: {reason}")

    def status(self) -> LinkSecurityStatus:
        now = self._monotonic()
        return LinkSecurityStatus(
            policy=str(self.policy),
            provisioned=self._verifier is not None,
            signed=self.active and self._signed and self.fault() is None,
            last_verified_s_ago=None if self._last_verified is None else now - self._last_verified,
            rejected=dict(self.rejected),
            fault=self.fault(),
        )
