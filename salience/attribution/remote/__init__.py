"""Served models: a vLLM server's prompt log-probabilities behind the scoring boundary (`scoring.Scorer`)."""
