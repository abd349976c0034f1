"""The model worker: dedicated threads that own the loaded model and run every attribution.

Model work never runs on the event loop nor on pygls' thread pool (pygls reads stdin there). The
model is loaded lazily on the first run and swapped when the requested model, device or dtype
changes; results go through one LRU cache keyed by exact token ids. Every use of the model holds
the turnstile, so only one run touches it at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from salience.attribution import (
    AttributionResult,
    CancelCheck,
    LoadedModel,
    Placement,
    Progress,
    PromptDocument,
    Request,
    ResultCache,
    SalienceError,
    ServerOptions,
    explain,
    load_model,
)
from salience.server.turnstile import Turnstile

log = logging.getLogger(__name__)

ModelKey = tuple[str | None, str, str, Placement, ServerOptions]
T = TypeVar("T")


class ModelWorker:
    """Runs `explain` on dedicated threads, one at a time on a lazily loaded, swappable model.

    With `threads` > 1 (a shared server), runs of different documents and clients take turns on the
    model between batches (`Turnstile`); with one thread they run in order.
    """

    def __init__(self, cache_size: int = 64, loader: Callable[..., LoadedModel] = load_model, threads: int = 1) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="salience-model")
        self.turnstile = Turnstile()
        self.cache = ResultCache(cache_size)
        self._loader = loader
        self._loaded: LoadedModel | None = None
        self._key: ModelKey | None = None

    async def explain(
        self,
        key: ModelKey,
        doc: PromptDocument,
        request: Request,
        owner: str,
        progress: Progress,
        cancelled: CancelCheck,
        notify: Callable[[str], None],
        client: str = "",
        on_heatmap: Callable[[AttributionResult], None] | None = None,
        on_start: Callable[[float], None] | None = None,
    ) -> AttributionResult:
        """Load (or reuse) the model named by `key` and explain `doc` on a worker thread, in turn.

        `on_start(seconds spent loading the model)` is called on the worker thread when the run has its
        turn and the model; `on_heatmap` there too, with the first stage of a two-stage run (see `explain`)."""

        def work() -> AttributionResult:
            with self.turnstile.turn(client, key) as give_way:
                waited = time.perf_counter()
                loaded = self._model(key, notify)
                if on_start is not None:
                    on_start(time.perf_counter() - waited)

                def between_batches() -> bool:
                    give_way()
                    return cancelled()

                return explain(
                    loaded, doc, request, progress, between_batches, self.cache, owner, on_heatmap, stop=cancelled
                )

        return await asyncio.get_running_loop().run_in_executor(self.executor, work)

    async def preload(self, key: ModelKey, notify: Callable[[str], None]) -> None:
        """Load the model named by `key` now, ahead of the first run (which then finds it ready).

        A model that fails to load is left for the first run to report, with its document.
        """

        def load() -> None:
            with self.turnstile.turn("", key):
                try:
                    self._model(key, notify)
                except Exception as err:  # reported by the run that needs it
                    log.info("preloading %s failed: %s", key[0] or "the default model", err)

        await asyncio.get_running_loop().run_in_executor(self.executor, load)

    async def with_model(self, model_id: str, work: Callable[[LoadedModel], T], client: str = "") -> T:
        """Run `work(model)` on a worker thread, if the loaded model is still `model_id`."""

        def run() -> T:
            with self.turnstile.turn(client, self._key):
                if self._loaded is None or self._loaded.model_id != model_id:
                    raise SalienceError(f"the model {model_id} is no longer loaded: run the attribution again")
                return work(self._loaded)

        return await asyncio.get_running_loop().run_in_executor(self.executor, run)

    def _model(self, key: ModelKey, notify: Callable[[str], None]) -> LoadedModel:
        if self._loaded is None or self._key != key:
            self._release()  # free the old weights (or connection) before loading the new ones
            spec, device, dtype, placement, server = key
            log.info("loading model %s on %s (%s)", spec or "default", device, dtype)
            self._loaded = self._loader(spec, device, dtype, notify=notify, placement=placement, server=server)
            self._key = self.turnstile.loaded_key = key
            self.cache.clear()
        return self._loaded

    def _release(self) -> None:
        """Let go of the model: its weights, or a served model's connection."""
        if self._loaded is not None and self._loaded.served:
            self._loaded.close()  # type: ignore[attr-defined]
        self._loaded, self._key = None, None

    @property
    def model_id(self) -> str | None:
        return self._loaded.model_id if self._loaded else None

    def unload(self) -> None:
        """Drop the model and the cache (settings changed); the next run reloads."""

        def drop() -> None:
            with self.turnstile.turn("", None):
                self._release()
                self.turnstile.loaded_key = None
                self.cache.clear()

        self.executor.submit(drop)

    def forget(self, owner: str) -> None:
        """Drop the cached results of one document (it changed on disk)."""

        def drop() -> None:
            with self.turnstile.turn("", self._key):
                self.cache.drop_owner(owner)

        self.executor.submit(drop)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
