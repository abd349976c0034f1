"""Judging scores, outside the engine: faithfulness metrics, and the Captum/Inseq reference oracle
the tests and benchmarks compare against."""
