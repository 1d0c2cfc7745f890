"""The export stage: the frozen model shipped in every format of ``export.formats`` it can
take, each held to the frozen graph on the prepared test split (shipping does the work).
"""

from __future__ import annotations

from pathlib import Path

from tfpersist import shipping
from tfpersist.core import atomic
from tfpersist.tables import records


def ship_frozen(
    frozen_pb: str | Path,
    prepared_dir: str | Path,
    out_dir: str | Path,
    sig: shipping.Signature,
    params,
    trust=None,
) -> dict:
    """The export stage: ``params.formats`` (params.ExportParams) of a frozen .pb under
    ``out_dir``, each held to the frozen graph on the prepared test split (its first
    ``records.HEAD`` rows: bounded memory; the evaluate stage runs every row); a format that
    cannot hold this model (OpenCV and a cnn) is left out, the report saying why. With no
    formats, ``out_dir`` is left empty and TensorFlow is not loaded."""
    from tfpersist.graph import graphdefs, signature  # TensorFlow from here on

    out_dir = Path(out_dir)
    if not params.formats:
        with atomic.replace_dir(out_dir):
            pass
        return {"rows": 0, "formats": {}, "left_out": {}}
    prepared = Path(prepared_dir)
    # held on the test split's first rows (all of the digits'); evaluate holds every row
    x, _ = records.read_split(prepared, "test", rows=records.HEAD)
    graph_def = graphdefs.read_graph_def(frozen_pb)
    extra = signature.data_of(signature.beside(frozen_pb))
    return shipping.ship(
        graph_def,
        out_dir,
        sig,
        list(params.formats),
        params.tflite_quantize,
        params.tolerance,
        x,
        trust,
        extra,
        leave_out_unsupported=True,
        rtol=params.rtol,
    )
