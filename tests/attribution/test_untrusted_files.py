"""A model directory from a repository runs no code: remote code and pickles are never loaded."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from salience.attribution import ModelLoadError, load_model

PAYLOAD = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\n"


class Boom:
    """Unpickling this writes the marker file (what a malicious pytorch_model.bin would do)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (PAYLOAD.format(marker=self.marker),))


def with_remote_code(tiny_model_dir: Path, tmp_path: Path, model_type: str) -> tuple[Path, Path]:
    model, marker = tmp_path / "model", tmp_path / "ran.txt"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config.update(
        model_type=model_type,
        auto_map={"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomModel"},
    )
    (model / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((model / "tokenizer_config.json").read_text())
    tokenizer_config["auto_map"] = {"AutoTokenizer": ["custom.CustomTokenizer", None]}
    (model / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (model / "custom.py").write_text(PAYLOAD.format(marker=str(marker)))
    return model, marker


def test_an_unknown_architecture_with_remote_code_is_refused_without_running_it(tiny_model_dir, tmp_path):
    model, marker = with_remote_code(tiny_model_dir, tmp_path, "custom")
    with pytest.raises(ModelLoadError, match="unsupported or unreadable model config"):
        load_model(str(model))
    assert not marker.exists()


def test_a_known_architecture_ignores_its_remote_code(tiny_model_dir, tmp_path):
    model, marker = with_remote_code(tiny_model_dir, tmp_path, "llama")
    loaded = load_model(str(model))
    assert type(loaded.model).__name__ == "LlamaForCausalLM" and not marker.exists()


def test_pickled_weights_beside_safetensors_are_never_unpickled(tiny_model_dir, tmp_path):
    model, marker = tmp_path / "model", tmp_path / "ran.txt"
    shutil.copytree(tiny_model_dir, model)
    for name in ("pytorch_model.bin", "training_args.bin", "optimizer.pt"):
        (model / name).write_bytes(pickle.dumps(Boom(str(marker))))
    load_model(str(model))
    assert not marker.exists()
    (model / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="only pickled weights"):
        load_model(str(model))
    assert not marker.exists()
