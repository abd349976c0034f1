"""Models across devices: accelerate's `device_map` and `max_memory`, for models larger than one device.

With a placement, transformers loads each layer onto its device (GPUs, the CPU, or "disk": weights
kept in an offload folder and brought in for each forward by accelerate's hooks). Inputs go to
the device the input embeddings run on; autograd carries gradients back across devices, so every
method runs unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salience.attribution.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class Placement:
    """Where the model's layers go: a strategy or a module → device map, and memory per device."""

    device_map: str | tuple[tuple[str, str | int], ...] | None = None
    max_memory: tuple[tuple[str | int, str], ...] | None = None

    @classmethod
    def of(cls, device_map: Any = None, max_memory: dict[Any, str] | None = None) -> Placement:
        """From a setting or flag: 'auto' (or another strategy), a mapping or its JSON, and memory per device."""
        if isinstance(device_map, str) and device_map.strip().startswith("{"):
            try:
                device_map = json.loads(device_map)
            except json.JSONDecodeError as err:
                raise ModelLoadError(f"device_map is not valid JSON: {err}") from err
        if isinstance(device_map, dict):
            mapping = tuple(sorted((str(k), v) for k, v in device_map.items()))
            return cls(mapping, _memory(max_memory))
        if device_map is not None and device_map not in STRATEGIES:
            raise ModelLoadError(
                f"device_map {device_map!r}: use {', '.join(STRATEGIES)} or a mapping of module "
                "names to devices (0, 'cuda:1', 'cpu', 'disk')"
            )
        return cls(device_map, _memory(max_memory))

    def __bool__(self) -> bool:
        return self.device_map is not None

    def loading_kwargs(self, offload_folder: Path) -> dict[str, Any]:
        """Keyword arguments for `from_pretrained`."""
        if self.device_map is None:
            return {}
        device_map = dict(self.device_map) if isinstance(self.device_map, tuple) else self.device_map
        kwargs: dict[str, Any] = {"device_map": device_map, "offload_folder": str(offload_folder)}
        if self.max_memory:
            kwargs["max_memory"] = {(int(k) if str(k).isdigit() else k): v for k, v in self.max_memory}
        return kwargs


def _memory(max_memory: dict[Any, str] | None) -> tuple[tuple[str | int, str], ...] | None:
    return tuple(sorted((str(k), str(v)) for k, v in max_memory.items())) if max_memory else None


def parse_max_memory(text: str) -> dict[str, str]:
    """'0=20GiB,cpu=64GiB' → {'0': '20GiB', 'cpu': '64GiB'} (the CLI's form)."""
    memory = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        device, sep, amount = part.partition("=")
        if not sep or not device or not amount:
            raise ModelLoadError(f"--max-memory {text!r}: expected DEVICE=SIZE,…, e.g. 0=20GiB,cpu=64GiB")
        memory[device.strip()] = amount.strip()
    return memory


def input_device(model: Any) -> torch.device:
    """The device the input embeddings run on (where input ids and embeddings must be)."""
    import torch

    embeddings = model.get_input_embeddings()
    hook = getattr(embeddings, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return torch.device(f"cuda:{execution}" if isinstance(execution, int) else execution)
    return embeddings.weight.device


def devices_used(model: Any) -> list[str]:
    """The distinct devices of the model's device map (e.g. ['cpu', 'disk']), for messages and tests."""
    return sorted({str(v) for v in (getattr(model, "hf_device_map", None) or {}).values()})
