"""Which rendered speech clips are on a nest's loudspeaker payload (so the same text is not
rendered and uploaded again)."""

from __future__ import annotations

from collections import OrderedDict


class SpeechClips:
    """Which rendered texts are on the payload, under which clip id (1..SIZE, least recently used
    reused first; talk-back uses ids from 65001)."""

    SIZE = 32

    def __init__(self) -> None:
        self._ids: OrderedDict[tuple[str, str], int] = OrderedDict()

    def get(self, key: tuple[str, str]) -> int | None:
        clip_id = self._ids.get(key)
        if clip_id is not None:
            self._ids.move_to_end(key)
        return clip_id

    def store(self, key: tuple[str, str]) -> int:
        if len(self._ids) < self.SIZE:
            used = set(self._ids.values())
            clip_id = next(i for i in range(1, self.SIZE + 1) if i not in used)
        else:
            _, clip_id = self._ids.popitem(last=False)
        self._ids[key] = clip_id
        return clip_id

    def forget(self, key: tuple[str, str]) -> None:
        self._ids.pop(key, None)
