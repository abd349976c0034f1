"""Compare mode works the comparison out once per result shown and baseline, not on every request."""

from __future__ import annotations

import pytest
from recording import Server, settled

from salience.server.layers import heatmap

URI = "file:///compare.prompt"
TEXT = "The code for the red door is 7733 and for the blue door 4812. The code for the red door is"


@pytest.fixture
def server(tiny_model_dir):
    server = Server(tiny_model_dir)
    yield server
    server.features.shutdown()


async def test_the_comparison_is_kept_until_the_result_or_the_baseline_changes(server):
    features = server.features
    server.open(URI, TEXT, 1)
    await settled(server, URI)
    features.compare.pin(URI)
    server.output.texts[URI] = TEXT.replace("blue", "green")
    features.edited(URI, 2, None)
    await settled(server, URI)
    await features.compare.start(URI, "pinned")
    first, second = features.view(URI), features.view(URI)
    assert first.comparison is not None and second.comparison is first.comparison  # not worked out again
    assert heatmap.hover(second, TEXT.index("7733")) is not None
    server.output.texts[URI] = TEXT.replace("blue", "yellow")
    features.edited(URI, 3, None)
    await settled(server, URI)
    third = features.view(URI)
    assert third.comparison is not None and third.comparison is not first.comparison  # a new result
    await features.compare.start(URI, "off")
    assert features.view(URI).comparison is None
