"""The settings one client gave, merged (defaults < user < workspace), which models they allow, and the model
they name: its key on the worker, loaded ahead of the first run, unloaded when the settings change it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from salience.attribution import FRONT_MATTER_SERVER, ModelLoadError, SalienceError, is_served
from salience.server.settings import USER_ONLY, ModelPolicy, Settings, merge_settings
from salience.server.worker import ModelWorker

ModelKey = tuple


class Configuration:
    """A client's settings and model policy; what it takes to load the model they name."""

    def __init__(self, worker: ModelWorker, owns_worker: bool, settings: Settings | None = None) -> None:
        self.worker = worker
        self.owns_worker = owns_worker
        """False on a shared server: other clients' runs use the same worker and model."""
        self.settings = settings or Settings()
        self.policy = ModelPolicy.of(self.settings)
        self.preloading = False
        """True while the model loads ahead of the first run (a run meanwhile says it waits for it)."""

    def merged(
        self, user: dict[str, Any] | None, workspace: dict[str, Any] | None
    ) -> tuple[Settings, ModelPolicy, list[str]]:
        """User (initializationOptions) and workspace settings merged, and the problems found; only the user's
        settings can allow workspace models or name the models that may load."""
        trusted, _ = merge_settings(user)
        workspace = {k: v for k, v in (workspace or {}).items() if k not in USER_ONLY}
        settings, problems = merge_settings(user, workspace)
        settings = settings.model_copy(update={"allow_workspace_models": trusted.allow_workspace_models})
        return settings, ModelPolicy.of(trusted), problems

    def update(self, settings: Settings, policy: ModelPolicy | None = None) -> None:
        """Take new settings (and which models may load); free the model now where they name another one."""
        old, self.settings = self.settings, settings
        self.policy = policy or ModelPolicy.of(settings)
        if _model_settings(old) != _model_settings(settings) and self.owns_worker:
            self.worker.unload()  # a shared worker swaps when a run needs another model

    def model_key(self, spec: str | None) -> ModelKey:
        settings = self.settings
        return (spec, settings.device, settings.dtype, settings.placement(), settings.server())

    def allowed(self, front_matter_model: str | None, params: dict[str, Any] | None = None) -> ModelKey:
        """The worker's key for the model a file names (else the settings'); raises `ModelLoadError` unless the
        user's settings allow it (and the models that `params` name). A file never names a server."""
        if is_served(front_matter_model):
            raise ModelLoadError(FRONT_MATTER_SERVER)
        spec = self.settings.model_spec(front_matter_model)
        self.policy.check(spec)
        self.policy.check_params(params)
        return self.model_key(spec)

    async def preload(self, notify: Callable[[str], None]) -> None:
        """Load the configured model while the editor opens its first file."""
        spec = self.settings.model_spec(None)
        try:
            self.policy.check(spec)
        except SalienceError:
            return  # the first run says why
        loop = asyncio.get_running_loop()
        self.preloading = True
        try:
            await self.worker.preload(self.model_key(spec), lambda message: loop.call_soon_threadsafe(notify, message))
        finally:
            self.preloading = False


def _model_settings(settings: Settings) -> tuple:
    return (
        settings.model,
        settings.models,
        settings.device,
        settings.dtype,
        settings.device_map,
        settings.max_memory,
        settings.server(),
    )
