"""The result cache: an edit that comes back to tokens explained before is answered at once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from salience.attribution.result import AttributionResult


class ResultCache:
    """A small LRU of results keyed by exact token ids and everything else that decides the scores."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, AttributionResult] = OrderedDict()
        self._owners: dict[str, set[Hashable]] = {}

    def get(self, key: Hashable) -> AttributionResult | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: Hashable, result: AttributionResult, owner: str | None = None) -> None:
        self._items[key] = result
        self._items.move_to_end(key)
        if owner is not None:
            self._owners.setdefault(owner, set()).add(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop_owner(self, owner: str) -> None:
        """Forget the results stored for one owner (e.g. a file that changed on disk)."""
        for key in self._owners.pop(owner, set()):
            self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
        self._owners.clear()

    def __len__(self) -> int:
        return len(self._items)
