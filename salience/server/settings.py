"""Server settings: one typed model, camelCase on the wire, merged in one place.

Priority, lowest first: defaults < `initializationOptions` < `workspace/configuration` (section
`salience`) or `didChangeConfiguration` < the file's front matter (applied by the engine). Invalid
values never stop the server: `merge_settings` drops them, falls back to the defaults and returns a
message for the user.

`initializationOptions` are the user's own settings (editors send them from the user's config);
`workspace/configuration` may hold a repository's settings, and front matter is the repository's
file. So a model path is loaded only if the user named it, or allowed workspace models
(`ModelPolicy`): opening a repository must not make the server read files it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from salience.attribution import EMBEDDED_NAMES, PROMPT_SUFFIXES, ModelLoadError, Placement, ServerOptions, is_served

SECTION = "salience"
DEFAULT_GLOBS = tuple(f"**/*{suffix}" for suffix in PROMPT_SUFFIXES)
USER_ONLY = (
    "allowWorkspaceModels",
    "allow_workspace_models",
    "tokenizer",
    "servedModel",
    "served_model",
    "apiKeyEnv",
    "api_key_env",
)
"""Keys read from user settings only (a workspace's value is ignored)."""


class Settings(BaseModel):
    """What a user can set for the server (also the VS Code extension's settings schema)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    model: str | None = None
    """Default model: 'default' (embedded SmolLM2), a name from `models`, a directory, a .gguf file, or a vLLM
    server's URL (http://HOST:PORT/v1: from user settings only)."""
    models: dict[str, str] = Field(default_factory=dict)
    """Named models: name -> local directory (safetensors), .gguf file or server URL; front matter may use a
    name."""
    tokenizer: str | None = None
    """A served model's tokenizer folder (else the folder its server loaded it from, where that is here).
    User settings only."""
    served_model: str | None = None
    """Which of the server's models, where it serves several. User settings only."""
    api_key_env: str | None = None
    """The environment variable holding the server's API key (the key itself is never a setting). User
    settings only."""
    method: str | None = None
    """Default attribution method (None: the engine's default interactive method)."""
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-method parameters, e.g. {"integrated_gradients": {"steps": 16}}."""
    progressive: bool = True
    """With a slow method, publish the default fast method first, then replace it."""
    debounce_ms: int = Field(default=100, ge=0, le=10_000)
    """Wait this long after the last edit before running. 100 ms: measured by `benchmarks/latency.py --sweep`,
    a typing burst (a key every 150 ms) gets its heatmap as soon as with no debounce (a newer edit stops a
    run inside its pass), while faster typing starts no run per key; 400 ms cost 0.5 s per edit."""
    bins: Literal["robust", "quantile", "fixed"] = "robust"
    """How importance maps to colour and the five levels: the robust scale (words above an even share of the
    relevance coloured, full colour from the 90th percentile: `views.spans.Scale`), quantiles over the
    document, or `thresholds`."""
    thresholds: tuple[float, float, float, float, float] = (0.02, 0.05, 0.1, 0.2, 0.35)
    """Lower bounds of levels 1..5 for `bins: fixed`, as a fraction of the largest |score|."""
    granularity: Literal["word", "token"] = "word"
    """What the views score: the file's words (a word's score is the sum of its tokens'), or model tokens."""
    inlay_top_k: int = Field(default=5, ge=0, le=100)
    """Inlay hints after the k most important words (or tokens); 0 turns them off."""
    fade_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    """Fade tokens (Hint diagnostics tagged Unnecessary) below this fraction of the largest |score|."""
    max_prompt_tokens: int = Field(default=1024, ge=16, le=8192)
    """Longer prompts get a diagnostic and only their last N tokens are attributed."""
    device: str = "auto"
    dtype: str = "auto"
    device_map: str | dict[str, str | int] | None = None
    """Spread the model over devices with accelerate: 'auto' (or 'balanced', 'sequential') or module → device."""
    max_memory: dict[str, str] | None = None
    """With `device_map`: memory per device, e.g. {"0": "20GiB", "cpu": "64GiB"}; the rest is offloaded to disk."""
    file_globs: tuple[str, ...] = DEFAULT_GLOBS
    """Which files are prompts (watched on disk, attributed when open)."""
    allow_workspace_models: bool = False
    """Load models that a workspace names (its settings, a file's front matter). Read from user settings only."""

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(value):
            raise ValueError("thresholds must increase")
        return value

    def placement(self) -> Placement:
        """Where the model's layers go (raises ModelLoadError for a bad `device_map`)."""
        return Placement.of(self.device_map, self.max_memory)

    def server(self) -> ServerOptions:
        """How to reach a served model (`model` naming a URL)."""
        return ServerOptions(self.tokenizer, self.served_model, self.api_key_env)

    def model_spec(self, front_matter_model: str | None) -> str | None:
        """The model to load: the front matter's (a name or path), else the setting; names resolve."""
        spec = front_matter_model or self.model
        return self.models.get(spec, spec) if spec else None


def merge_settings(*layers: dict[str, Any] | None) -> tuple[Settings, list[str]]:
    """Merge raw setting layers (lowest priority first); invalid keys fall back to defaults with a message."""
    merged: dict[str, Any] = {}
    for layer in layers:
        if isinstance(layer, dict):
            merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        return Settings.model_validate(merged), []
    except ValidationError as err:
        bad = {str(e["loc"][0]) for e in err.errors() if e["loc"]}
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in err.errors()]
        kept = {k: v for k, v in merged.items() if k not in bad}
        try:
            settings = Settings.model_validate(kept)
        except ValidationError:
            settings = Settings()
        return settings, [f"salience: invalid setting {p}; using the default" for p in problems]


def section_of(raw: Any) -> dict[str, Any] | None:
    """The `salience` section of a settings payload (clients send it nested or bare)."""
    if not isinstance(raw, dict):
        return None
    inner = raw.get(SECTION)
    return inner if isinstance(inner, dict) else raw


WORKSPACE_MODEL_FIX = (
    "add it to `models` in your user settings (the server's initializationOptions), or set "
    "`allowWorkspaceModels: true` there"
)


@dataclass(frozen=True)
class ModelPolicy:
    """Which model specs the server may load: the user's own, the embedded default, others only if allowed."""

    trusted: frozenset[str] = frozenset()
    allow_workspace: bool = False

    @classmethod
    def of(cls, user: Settings) -> ModelPolicy:
        """The policy from user-level settings: their `model` and `models` are trusted."""
        named = {user.model_spec(None), *user.models.values(), *_param_paths(user.method_params.values())}
        return cls(frozenset(_canonical(spec) for spec in named if spec), user.allow_workspace_models)

    def check(self, spec: str | None, what: str = "model") -> None:
        """Raise `ModelLoadError` naming the fix unless `spec` may be loaded (a server: only one the user named,
        whatever `allow_workspace` says, since a workspace could send the prompt anywhere)."""
        if is_served(spec) and _canonical(spec) not in self.trusted:  # type: ignore[arg-type]
            raise ModelLoadError(
                f"the server {spec!r} is named by this workspace, and salience sends your prompt only to servers "
                "in your user settings: add it to `model` or `models` there"
            )
        if spec is None or spec.lower() in EMBEDDED_NAMES or self.allow_workspace or _canonical(spec) in self.trusted:
            return
        raise ModelLoadError(
            f"{what} {spec!r} is named by this workspace (its settings or this file's front matter), and salience "
            f"loads only the models in your user settings and the embedded default, so that opening a repository "
            f"cannot make it read files; to use this model, {WORKSPACE_MODEL_FIX}"
        )

    def check_params(self, params: dict[str, Any] | None) -> None:
        """The same rule for method parameters that name a model (ReAGent's `mlm_path`)."""
        for path in _param_paths([params or {}]):
            self.check(path, "mlm_path")


PATH_PARAMS = ("mlm_path",)


def _param_paths(params: Any) -> list[str]:
    return [str(p[key]) for p in params if isinstance(p, dict) for key in PATH_PARAMS if p.get(key)]


def _canonical(spec: str) -> str:
    """A spec as an absolute path (so '~/m' and '/home/u/m' match); names and URLs stay as they are."""
    if is_served(spec):
        return spec.rstrip("/")
    try:
        return str(Path(spec).expanduser().resolve())
    except (OSError, RuntimeError, ValueError):
        return spec
