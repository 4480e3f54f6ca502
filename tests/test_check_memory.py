"""`gen check` in batches (issue 13, finding 7): memory bounded by the batch, results equal to one big batch."""

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

from gen.cli import main
from gen.frontend import load, lower
from gen.golden.check import check, check_stream, input_sampler
from gen.ir import layers as L

MODEL = Path(__file__).resolve().parents[1] / "examples" / "example_cnn.onnx"


@pytest.fixture(scope="module")
def cnn():
    loaded = load(MODEL)
    return loaded, lower(loaded)


def _batches(x, b):
    return (x[i:i + b] for i in range(0, x.shape[0], b))


def test_sampler_frames_do_not_depend_on_the_batch(cnn):
    _, design = cnn
    s = input_sampler(design)
    whole = s.draw(11, np.random.default_rng(5))
    parts = np.concatenate(list(s.batches(11, 4, np.random.default_rng(5))))
    assert parts.shape == whole.shape and (parts == whole).all()
    assert len(np.unique(whole)) > 1


def test_batched_report_equals_unbatched(cnn):
    loaded, design = cnn
    x = input_sampler(design).draw(10, np.random.default_rng(0))
    one = check(design, loaded.model, x)
    streamed = check_stream(design, loaded.model, _batches(x, 3))
    # the float output's near-ties exercise the per-frame error bound; the whole report must be the same
    assert one.end_to_end.near_ties > 0
    assert streamed == one


def test_batched_report_equals_unbatched_with_mismatches(cnn):
    """A golden-model bug (one weight changed): the unexplained mismatches, their counts and the first five
    examples (with frame numbers of the whole run, not of the batch) are the same in batches."""
    loaded, design = cnn
    layer = next(lay for lay in design.layers if isinstance(lay, L.Conv))
    w = layer.weight
    w.flat[0] = w.flat[0] + 1 if w.flat[0] < w.max() else w.flat[0] - 1
    try:
        x = input_sampler(design).draw(7, np.random.default_rng(1))
        one = check(design, loaded.model, x)
        streamed = check_stream(design, loaded.model, _batches(x, 2))
        late = check(design, loaded.model, x[4:6], frame0=4)
    finally:
        lower_again = lower(loaded)   # leave the module fixture's design as it was
        layer.weight[...] = next(lay for lay in lower_again.layers if lay.name == layer.name).weight
    assert one.unexplained > 0
    assert streamed == one
    # a later batch names its frames by their number in the run
    examples = [ex for st in late.layers.values() for ex in st.examples] + late.end_to_end.examples
    assert examples and all(ex.startswith(("(4,", "(5,")) for ex in examples)


def test_check_stream_holds_one_batch_at_a_time(cnn):
    loaded, design = cnn
    s = input_sampler(design)
    refs = []

    def gen():
        rng = np.random.default_rng(2)
        for _ in range(4):
            if len(refs) >= 2:
                gc.collect()
                assert refs[-2]() is None, "an earlier batch is still referenced"
            x = s.draw(2, rng)
            refs.append(weakref.ref(x))
            yield x

    assert check_stream(design, loaded.model, gen()).frames == 8


def test_cli_batch_changes_nothing_in_the_output(capsys):
    assert main(["check", str(MODEL), "--n", "5", "--batch", "2"]) == 0
    a = capsys.readouterr().out
    assert main(["check", str(MODEL), "--n", "5", "--batch", "64"]) == 0
    assert capsys.readouterr().out == a


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--batch", "-3"], ["--n", "0"]])
def test_cli_bad_batch_or_no_frames(argv, capsys):
    assert main(["check", str(MODEL)] + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
