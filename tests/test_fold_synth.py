"""Resource model vs live Yosys on held-out kernels (not used in the fit): LUT within 35%, BRAM18 / DSP exact."""

import numpy as np
import pytest

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("case", ["mvu", "swg"])
def test_model_error_on_held_out_kernels(tmp_path, case):
    from gen.fold.resources import estimate, measured, params_from_rendered
    from gen.rtl.requant import RequantSpec
    from gen.rtl.synth import synth
    rng = np.random.default_rng(3)
    if case == "mvu":
        from gen.rtl.mvu import render_mvu
        w = rng.integers(-2, 2, size=(16, 144))
        t = np.sort(rng.integers(-40, 40, size=(16, 3)), axis=1)
        r = render_mvu("ho", w, pe=4, simd=8, w_bits=2, a_bits=2, requant=RequantSpec("thresholds", thresholds=t,
                                                                                       out_lo=0))
    else:
        from gen.rtl.swg import render_swg
        r = render_swg("ho", ifm_ch=32, ifm_dim=14, simd=8, a_bits=2, k=3, pads=(1, 1, 1, 1))
    m = measured(synth(r, tmp_path))
    e = estimate(r.kernel, params_from_rendered(r))
    assert abs(e["lut"] - m["lut"]) <= 0.35 * m["lut"], (e, m)
    assert e["bram18"] == m["bram18"] and e["dsp"] == m["dsp"], (e, m)
