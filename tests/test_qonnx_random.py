"""Property test: random QONNX graphs (every supported op) - golden vs qonnx, no unexplained mismatch."""

import numpy as np
import pytest

from gen.frontend import Loaded, lower, prepare
from gen.golden.check import check
from tests.modelgen.qonnx_models import QONNX_KINDS, qonnx_model

# kinds whose random instances gen cannot always lower yet (see the issue note): exercised, but a clear
# GenError (never a wrong answer) is accepted for them
PARTIAL = {"residual", "nhwc", "softmax", "argmax"}


@pytest.mark.parametrize("kind", QONNX_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_random_qonnx(kind, seed):
    from gen.errors import GenError
    rng = np.random.default_rng(1000 + seed)
    gm = qonnx_model(kind, rng)
    m = prepare(gm.model, "qonnx")
    try:
        d = lower(Loaded(m, "qonnx", kind, None))
    except GenError:
        if kind in PARTIAL:
            pytest.skip("not lowered yet (clear error)")
        raise
    rep = check(d, m, gm.sample(6, rng))
    # unexplained includes arg-max disagreements not attributable to a proven near-tie in the same frame
    assert rep.unexplained == 0, {k: s.examples for k, s in rep.layers.items()}
