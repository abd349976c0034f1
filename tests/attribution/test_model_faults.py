"""Broken model files and an unwritable cache: a message naming the fix, or a way around, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_models import save_tiny_model

from salience.attribution import ModelLoadError, load_model, sources


def broken_copy(tiny_model_dir: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    damage(copy)
    return copy


def garbage_weights(d: Path) -> None:
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")


def truncated_weights(d: Path) -> None:
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


DAMAGE = {
    "garbage weights": (garbage_weights, "cannot load the weights"),
    "truncated weights": (truncated_weights, "cannot load the weights"),
    "weights deleted": (lambda d: (d / "model.safetensors").unlink(), "has no \\*.safetensors weights"),
    "corrupt config": (lambda d: (d / "config.json").write_text('{"model_type": "llama", '), "unreadable model config"),
    "corrupt tokenizer": (lambda d: (d / "tokenizer.json").write_text("{garbage"), "cannot load the tokenizer"),
    "tokenizer deleted": (lambda d: [p.unlink() for p in d.glob("tokenizer*")], "cannot load the tokenizer"),
}


@pytest.mark.parametrize("damage,message", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_model_directories_are_named(tiny_model_dir, tmp_path, damage, message):
    model = broken_copy(tiny_model_dir, tmp_path, damage)
    with pytest.raises(ModelLoadError, match=message) as raised:
        load_model(str(model))
    assert str(model) in str(raised.value) and "\n" not in str(raised.value)


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch) -> Path:
    """A .gguf whose 'conversion' writes the tiny model (a real one would take the embedded model's 22 s)."""
    monkeypatch.setattr(sources, "_write_safetensors", lambda gguf, out: save_tiny_model(out))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    return gguf


def test_an_unwritable_cache_converts_into_a_temporary_directory(fake_gguf, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache should be")
    monkeypatch.setenv("SALIENCE_CACHE", str(blocker / "cache"))
    said: list[str] = []
    loaded = load_model(str(fake_gguf), notify=said.append)
    assert loaded.model_id == "tiny" and "cannot write the model cache" in said[0] and "SALIENCE_CACHE" in said[0]
    again: list[str] = []
    load_model(str(fake_gguf), notify=again.append)  # converted once per session, even without a cache
    assert not any("converting" in m for m in again)


def test_a_damaged_conversion_is_converted_again(fake_gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    load_model(str(fake_gguf))
    (converted,) = (tmp_path / "cache" / "models").iterdir()
    truncated_weights(converted)
    said: list[str] = []
    loaded = load_model(str(fake_gguf), notify=said.append)
    assert loaded.model_id == "tiny" and "unreadable: converting it again" in said[0]
    assert (converted / "model.safetensors").stat().st_size > 1000
