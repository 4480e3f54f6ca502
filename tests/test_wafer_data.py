"""examples/wafer/wafermap.py: synthetic WM-811K-like maps, resize modes, model input, G85 and WM-811K readers."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "wafer"))
import wafermap as wm  # noqa: E402


def test_classes_in_wm811k_order():
    assert wm.CLASSES == ("Center", "Donut", "Edge-Loc", "Edge-Ring", "Loc", "Random", "Scratch", "Near-full",
                          "none")


@pytest.mark.parametrize("variant", ["standard", "hard"])
def test_deterministic_balanced_shapes_values(variant):
    X, y = wm.generate(12, seed=5, variant=variant)
    X2, y2 = wm.generate(12, seed=5, variant=variant)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = wm.generate(12, seed=6, variant=variant)
    assert not np.array_equal(X, X3)
    assert X.shape == (108, 42, 42) and X.dtype == np.uint8 and y.dtype == np.int64
    assert np.bincount(y, minlength=9).tolist() == [12] * 9
    assert set(np.unique(X)) == {0, 1, 2}
    assert len(set(y[:9].tolist())) > 1  # shuffled, not class by class


def test_map_independent_of_set_size():
    # map k of class c depends on (seed, c, k) only
    _, _, g_small, _ = wm.generate(3, seed=2, return_grids=True)
    _, _, g_big, _ = wm.generate(5, seed=2, return_grids=True)
    key = lambda gs: sorted(g.tobytes() + bytes(g.shape) for g in gs)  # noqa: E731
    assert set(key(g_small)) <= set(key(g_big))


def test_die_grids_geometry():
    sides, aspects, flats = [], [], 0
    for k in range(120):
        rng = np.random.default_rng([7, k])
        g = wm.die_grid(rng)
        assert 15 <= max(g.rows, g.cols) <= 100 and min(g.rows, g.cols) >= 15
        sides.append(max(g.rows, g.cols))
        aspects.append(g.rows / g.cols)
        # circular: the corners are off the wafer, the centre is on it
        assert not g.on[0, 0] and not g.on[-1, -1] and g.on[g.rows // 2, g.cols // 2]
        # a flat: the bottom row has fewer dies than the top row
        flats += int(g.on[-1].sum() + 1 < g.on[0].sum())
    assert min(sides) < 30 and max(sides) > 85
    assert min(aspects) < 0.8 and max(aspects) > 1.25  # non-square dies
    assert 20 < flats < 100


def test_class_patterns_differ_in_fail_statistics():
    X, y = wm.generate(40, seed=3)
    on = X > 0
    frac = ((X == 2).sum((1, 2)) / on.sum((1, 2)))
    mean = [frac[y == c].mean() for c in range(9)]
    assert mean[wm.CLASSES.index("Near-full")] > 0.7
    assert 0.12 < mean[wm.CLASSES.index("Random")] < 0.55
    assert mean[wm.CLASSES.index("none")] < 0.08
    # edge classes fail at the rim, centre classes in the middle
    yy, xx = np.mgrid[0:42, 0:42]
    r = np.hypot(yy - 20.5, xx - 20.5)
    rim, mid = r > 16, r < 8

    def rate(c, region):
        s = X[y == c][:, region]
        return (s == 2).sum() / max((s > 0).sum(), 1)
    assert rate(wm.CLASSES.index("Edge-Ring"), rim) > 3 * rate(wm.CLASSES.index("Edge-Ring"), mid)
    assert rate(wm.CLASSES.index("Center"), mid) > 3 * rate(wm.CLASSES.index("Center"), rim)


@pytest.mark.parametrize("mode", wm.RESIZE_MODES)
def test_resize_modes(mode):
    rng = np.random.default_rng(0)
    for shape in [(15, 23), (100, 61), (42, 42), (30, 90)]:
        m = rng.integers(0, 3, shape).astype(np.uint8)
        r = wm.resize(m, 42, mode)
        assert r.shape == (42, 42) and r.dtype == np.uint8 and set(np.unique(r)) <= {0, 1, 2}
        const = np.full(shape, 2, np.uint8)
        assert (wm.resize(const, 42, mode) == 2).all()
    # identity at the same size for every mode
    m = rng.integers(0, 3, (42, 42)).astype(np.uint8)
    assert np.array_equal(wm.resize(m, 42, mode), m)


def test_resize_nearest_is_a_pure_index_map():
    m = np.arange(21 * 14).reshape(21, 14) % 3
    r = wm.resize(m.astype(np.uint8), 42, "nearest")
    assert np.array_equal(r, np.repeat(np.repeat(m, 2, 0), 3, 1))
    with pytest.raises(ValueError):
        wm.resize(m, 42, "bicubic")


def test_hard_variant_mixes_modes():
    _, _, _, modes = wm.generate(10, seed=1, variant="hard", return_grids=True)
    assert set(modes) == set(wm.HARD_MODES)
    _, _, _, modes = wm.generate(4, seed=1, return_grids=True)
    assert set(modes) == {"nearest"}


def test_model_input_and_prepare_match_training_path():
    X, y, grids, modes = wm.generate(4, seed=9, return_grids=True)
    x = wm.to_model_input(X)
    assert x.shape == (36, 1, 42, 42) and x.dtype == np.float32
    assert np.array_equal(x[:, 0], X.astype(np.float32))
    assert np.array_equal(wm.prepare(grids), x)  # list of die grids of different sizes
    obj = np.empty(len(grids), object)
    obj[:] = grids
    assert np.array_equal(wm.prepare(obj), x)    # WM-811K object array
    with pytest.raises(ValueError):
        wm.to_model_input(np.full((2, 42, 42), 3))


def test_wm811k_dataframe_column():
    pd = pytest.importorskip("pandas")
    X, y, grids, _ = wm.generate(2, seed=4, return_grids=True)
    names = [[[wm.CLASSES[c]]] for c in y]
    names[0] = []  # unlabelled, as most of WM-811K
    df = pd.DataFrame({"waferMap": grids, "failureType": names})
    assert np.array_equal(wm.prepare(df["waferMap"]), wm.to_model_input(X))
    lab = wm.wm811k_labels(df["failureType"])
    assert lab[0] == -1 and np.array_equal(lab[1:], y[1:])


def _grids(n=5, seed=11):
    _, _, grids, _ = wm.generate(1, seed=seed, return_grids=True)
    return grids[:n]


@pytest.mark.parametrize("use_package", [False, True])
def test_g85_round_trip(use_package, tmp_path):
    if use_package:
        pytest.importorskip("g85")
    grids = _grids()
    path = tmp_path / "lot.xml"
    wm.write_g85(grids, path, wafer_ids=[f"W{i}" for i in range(len(grids))])
    got = wm.read_g85(path, use_package=use_package)
    assert len(got) == len(grids)
    for i, (w, g) in enumerate(zip(got, grids)):
        assert w.wafer_id == f"W{i}"
        assert np.array_equal(w.grid, g)
    # the same from a string and a file object
    text = path.read_text()
    assert np.array_equal(wm.read_g85(text, use_package=use_package)[0].grid, grids[0])
    assert np.array_equal(wm.read_g85(io.StringIO(text), use_package=use_package)[1].grid, grids[1])
    # and the model input equals the training path's
    assert np.array_equal(wm.prepare([w.grid for w in got]), wm.prepare(grids))


def test_g85_written_by_the_g85_package_and_other_bin_types():
    g85 = pytest.importorskip("g85")
    grid = _grids(1)[0]
    # ASCII bins: '.' null, 'A' pass, 'X' and 'Y' fail; 'Z' is not listed -> fail
    sym = np.array([".", "A", "X"])[grid]
    sym[grid == 2] = np.where(np.arange((grid == 2).sum()) % 3 == 0, "Y", "X")
    sym[np.nonzero(grid == 2)[0][:1], np.nonzero(grid == 2)[1][:1]] = "Z"
    dev = g85.Device(BinType="ASCII", NullBin=".", map=[list(r) for r in sym],
                     bin_pass={"A": True, "X": False, "Y": False})
    buf = io.BytesIO()  # g85.write emits bytes (ElementTree's default us-ascii encoding) despite its TextIO hint
    g85.write([g85.Map(SubstrateId="S1", devices=[dev])], buf)
    for pkg in (False, True):
        w = wm.read_g85(buf.getvalue(), use_package=pkg)
        assert len(w) == 1 and w[0].wafer_id == "S1" and np.array_equal(w[0].grid, grid)


def test_g85_decimal_codes_compare_as_numbers():
    xml = """<Maps><Map xmlns="http://www.semi.org" SubstrateId="D"><Device BinType="Decimal" NullBin="255">
      <Bin BinCode="001" BinQuality="Pass"/><Bin BinCode="007" BinQuality="Fail"/>
      <Data><Row><![CDATA[255 1 7 255]]></Row><Row><![CDATA[001 001 007 255]]></Row></Data>
    </Device></Map></Maps>"""
    for pkg in ([False, True] if _has_g85() else [False]):
        g = wm.read_g85(xml, use_package=pkg)[0].grid
        assert g.tolist() == [[0, 1, 2, 0], [1, 1, 2, 0]]


def _has_g85():
    try:
        import g85  # noqa: F401
        return True
    except ImportError:
        return False
