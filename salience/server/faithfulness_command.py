"""`salience.faithfulness`: how faithful the shown scores are (Soft-NS/NC, MoRF/LeRF), measured on the worker."""

from __future__ import annotations

from salience.attribution import SalienceError
from salience.evaluation.faithfulness import Faithfulness, faithfulness
from salience.server.open_documents import Documents
from salience.server.runs import RunManager


async def measure_faithfulness(documents: Documents, runs: RunManager, uri: str) -> Faithfulness:
    """The figures for the result shown on `uri`, with progress; raises SalienceError without an
    up-to-date result (or Cancelled)."""
    doc = documents[uri]
    result = doc.result
    if result is None or doc.result_version != doc.version:
        raise SalienceError("no up-to-date result for this document yet: wait for the heatmap, then ask again")
    return await runs.side_job(
        uri,
        "salience: faithfulness",
        lambda job, progress: runs.worker.with_model(
            result.model_id,
            lambda loaded: faithfulness(loaded, result, progress=progress, cancelled=job.cancel.is_set),
            runs.client,
        ),
    )
