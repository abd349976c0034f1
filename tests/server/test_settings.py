"""Settings merging: defaults < initializationOptions < workspace configuration; bad values fall back."""

from __future__ import annotations

import pytest

from salience.server.settings import Settings, merge_settings, section_of

CASES = {
    "defaults": ([], {"debounce_ms": 100, "bins": "robust", "inlay_top_k": 5}, 0),
    "camelCase on the wire": ([{"debounceMs": 100, "inlayTopK": 2}], {"debounce_ms": 100, "inlay_top_k": 2}, 0),
    "workspace overrides init": ([{"method": "saliency"}, {"method": "occlusion"}], {"method": "occlusion"}, 0),
    "None does not override": ([{"debounceMs": 50}, {"debounceMs": None}], {"debounce_ms": 50}, 0),
    "bad value falls back": ([{"debounceMs": "soon", "bins": "fixed"}], {"debounce_ms": 100, "bins": "fixed"}, 1),
    "unknown key": ([{"colour": "red", "inlayTopK": 3}], {"inlay_top_k": 3}, 1),
    "thresholds must increase": (
        [{"thresholds": [0.5, 0.1, 0.2, 0.3, 0.4]}],
        {"thresholds": (0.02, 0.05, 0.1, 0.2, 0.35)},
        1,
    ),
    "per-method parameters": (
        [{"methodParams": {"integrated_gradients": {"steps": 8}}}],
        {"method_params": {"integrated_gradients": {"steps": 8}}},
        0,
    ),
}


@pytest.mark.parametrize("layers,expected,problems", CASES.values(), ids=CASES.keys())
def test_merge(layers, expected, problems):
    settings, messages = merge_settings(*layers)
    assert {k: getattr(settings, k) for k in expected} == expected
    assert len(messages) == problems
    assert all("using the default" in m for m in messages)


def test_named_models_resolve_and_front_matter_wins():
    settings = Settings(model="small", models={"small": "/models/small", "big": "/models/big.gguf"})
    assert settings.model_spec(None) == "/models/small"
    assert settings.model_spec("big") == "/models/big.gguf"
    assert settings.model_spec("/elsewhere") == "/elsewhere"


def test_section_of_accepts_nested_or_bare():
    assert section_of({"salience": {"method": "x"}}) == {"method": "x"}
    assert section_of({"method": "x"}) == {"method": "x"}
    assert section_of(None) is None
