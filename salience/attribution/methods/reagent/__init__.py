"""ReAGent, with the replacement tokens its probes insert."""
