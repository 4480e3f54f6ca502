"""Property-based fuzzer (issue 13): mutated real models and random CLI / board / fold / --inputs values through
the real CLI (gen.cli.main, in-process). For every case:

* exit 0: the design was written (design.json loads back) and `gen check` on the same model passes (exit 0);
  for `gen check` itself, exit 0 with its OK line;
* exit 2: exactly one `error:` line on stderr, no traceback;
* nothing else: no other exit code, no exception escaping main, no SystemExit;
* no file outside the output folder is created, changed or removed (the case runs in a sandbox folder, cwd too);
* a previous gen output in the output folder is left byte-identical when the run fails.

The default run is bounded (80 cases, 30-60 s on one core); `-m slow` runs the same properties with 1,050 cases. Set
GEN_FUZZ_SUMMARY=path.json to record the outcome counts (case kind, command, exit code and message class), and
GEN_FUZZ_RECORD=1 to count broken properties instead of stopping at the first.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from gen.ir.design import Design
from tests.modelgen import qdq_model, qonnx_model, qop_model
from tests.test_validation import BOARDS, MODELS, hw_nodes, run_cli

OUTCOMES: Counter = Counter()
DETAIL: list = []   # what the current case's mutation did, for the failure message
# GEN_FUZZ_RECORD=1: count a broken property as an outcome (FAILED ...) and go on, for a complete summary of a long
# run (the failures' details go to the summary file); otherwise the first one fails the test
RECORD_ONLY = os.environ.get("GEN_FUZZ_RECORD") == "1"
FAILURES: list = []
SPECIAL = [float("nan"), float("inf"), float("-inf"), 0.0, -0.0, -1.0, -0.5, 1e-30, 1e30, 0.5, 1.0, 3.0, 255.0,
           256.0, -129.0, 1e9]


def _summary() -> None:
    path = os.environ.get("GEN_FUZZ_SUMMARY")
    if path and OUTCOMES:
        rows = sorted(OUTCOMES.items(), key=lambda kv: (-kv[1], kv[0]))
        Path(path).write_text(json.dumps({"cases": sum(OUTCOMES.values()), "outcomes": [[k, v] for k, v in rows],
                                          "failures": FAILURES}, indent=1))


atexit.register(_summary)


# ------------------------------------------------------------------------------------------ base models

def _bases() -> list[tuple[str, bytes]]:
    """Small real models: the three modelgen flavours and the shared exports (when present)."""
    out = []
    for make, kind in ((qonnx_model, "gemm"), (qonnx_model, "relu"), (qonnx_model, "batchnorm"),
                       (qdq_model, "gemm"), (qdq_model, "conv"), (qop_model, "gemm"), (qop_model, "conv")):
        out.append((f"{make.__name__.split('_')[0]}_{kind}", make(kind, np.random.default_rng(1)).model
                    .SerializeToString()))
    for name in ("tfc_1w1a", "qkeras_qconv2d_mnist"):
        if (MODELS / f"{name}.onnx").exists():
            out.append((name, (MODELS / f"{name}.onnx").read_bytes()))
    return out


BASES = _bases()
SMALL = BASES[1]   # qonnx relu: the quickest to generate, for CLI / board / fold cases


@pytest.fixture(scope="module")
def previous_output(tmp_path_factory) -> Path:
    """A folder gen wrote (SMALL, default options): copied into a case's output folder as its previous output."""
    root = tmp_path_factory.mktemp("prev")
    (root / "m.onnx").write_bytes(SMALL[1])
    r = run_cli([root / "m.onnx", "-o", root / "out"])
    assert r[0] == 0, r
    return root / "out"


# ------------------------------------------------------------------------------------------ the property

def _snapshot(root: Path, skip: Path | None = None) -> dict:
    """path -> sha256 of every file under root (folders as ''), except under `skip`."""
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        if skip is not None and (d == skip or skip in d.parents):
            dirnames[:] = []
            continue
        for name in dirnames:
            if d / name != skip:
                snap[str((d / name).relative_to(root))] = ""
        for name in filenames:
            p = d / name
            snap[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "?"
    return snap


def message_class(line: str) -> str:
    """An error line without its specifics (paths, names, numbers): what kind of refusal it is."""
    s = line[len("error:"):].strip()
    s = re.sub(r"(?<![\w.])(/[^\s:,;()']+)+", "<path>", s)
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"0x[0-9a-fA-F]+", "N", s)
    s = re.sub(r"(?<![\w])-?\d[\d.,e+-]*", "N", s)
    return " ".join(s.split()[:9])


def run_case(kind: str, args: list, sandbox: Path, out: Path, prev: Path | None, model: Path | None) -> None:
    """Run gen with `args` inside `sandbox`, check the properties of the module doc and count the outcome."""
    problem, outcome = check_case(args, sandbox, out, prev, model)
    command = "check" if args[0] == "check" else "generate"
    if problem is not None:
        OUTCOMES[f"FAILED {kind} {command}: {problem.splitlines()[0][:100]}"] += 1
        if not RECORD_ONLY:
            raise AssertionError(f"{kind} {DETAIL} {command}: {problem}")
        FAILURES.append(f"{kind} {DETAIL} {args[1:]}: {problem[-3000:]}")
        return
    OUTCOMES[f"{kind} {command}: {outcome}"] += 1


def check_case(args, sandbox, out, prev, model) -> tuple[str | None, str]:
    """(the property broken, or None; the outcome class)."""
    if prev is not None:
        shutil.copytree(prev, out)
    before_out = _snapshot(out) if out.exists() else None
    before = _snapshot(sandbox, out)
    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        rc, stdout, stderr = run_cli(args)
    finally:
        os.chdir(cwd)
    command = "check" if args[0] == "check" else "generate"
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    if rc not in (0, 2) or "Traceback" in stderr:
        return f"exit {rc}\n{stdout[-3000:]}\n{stderr[-6000:]}", ""
    if _snapshot(sandbox, out) != before:
        return f"files outside the output folder changed (exit {rc}; {stderr[-2000:]})", ""
    if rc == 2:
        if len(errors) != 1:
            return f"exit 2 with {len(errors)} error: lines\n{stderr[-3000:]}", ""
        if before_out is not None and _snapshot(out) != before_out:
            return f"previous output changed ({errors[0]})", ""
        return None, f"exit 2: {message_class(errors[0])}"
    if errors:
        return f"exit 0 with an error: line\n{stderr[-3000:]}", ""
    if command == "check":
        return (None, "exit 0") if "OK" in stdout else (f"exit 0 without OK\n{stdout[-3000:]}", "")
    try:
        Design.load(out / "design.json")   # the design was written and reads back
    except Exception as e:  # noqa: BLE001
        return f"exit 0 but design.json does not load ({type(e).__name__}: {e})", ""
    r = run_cli(["check", model, "--n", "3"])
    if r[0] != 0:
        return f"generate exit 0 but gen check exit {r[0]}\n{r[1][-3000:]}\n{r[2][-4000:]}", ""
    return None, "exit 0, gen check OK"


class Sandbox:
    """A fresh folder per case: in/ for the inputs, out/ the output folder."""

    def __enter__(self) -> Path:
        self.root = Path(tempfile.mkdtemp(prefix="genfuzz-"))
        (self.root / "in").mkdir()
        return self.root

    def __exit__(self, *exc):
        shutil.rmtree(self.root, ignore_errors=True)


# ------------------------------------------------------------------------------------------ model mutations

def _set_array(init, arr) -> None:
    init.CopyFrom(numpy_helper.from_array(np.asarray(arr), init.name))


def _cast_like(value: float, dtype) -> object:
    if np.issubdtype(dtype, np.floating):
        return value
    info = np.iinfo(dtype)   # clamp as Python ints: a float bound of int64 rounds past its range
    return 0 if not np.isfinite(value) else max(int(info.min), min(int(info.max), int(value)))


def mut_initializer(m, data) -> str:
    inits = list(m.graph.initializer)
    if not inits:
        return "none"
    init = inits[data.draw(st.integers(0, len(inits) - 1), "initializer")]
    arr = numpy_helper.to_array(init).copy()
    value = data.draw(st.one_of(st.sampled_from(SPECIAL), st.floats(-1e6, 1e6)), "value")
    v = _cast_like(value, arr.dtype)
    if arr.size and data.draw(st.booleans(), "one element"):
        k = data.draw(st.integers(0, arr.size - 1), "element")
        arr.flat[k] = v
        DETAIL.append(f"{init.name}{list(arr.shape)} element {k} = {v!r}")
    else:
        arr = np.full_like(arr, v)
        DETAIL.append(f"{init.name}{list(arr.shape)} all = {v!r}")
    _set_array(init, arr)
    return "initializer value"


def mut_bits(m, data) -> str:
    inits = {i.name: i for i in m.graph.initializer}
    quants = [n for n in m.graph.node if n.op_type == "Quant" and len(n.input) > 3 and n.input[3] in inits]
    if not quants:
        return mut_initializer(m, data)
    n = quants[data.draw(st.integers(0, len(quants) - 1), "quant")]
    bits = data.draw(st.sampled_from([-2.0, 0.0, 0.5, 1.0, 2.0, 3.0, 7.0, 8.0, 9.0, 16.0, 32.0, 33.0, float("nan")]))
    _set_array(inits[n.input[3]], np.array(bits, np.float32))
    DETAIL.append(f"{n.name} bit width = {bits}")
    return "quant bit width"


def mut_attribute(m, data) -> str:
    nodes = [n for n in m.graph.node if n.attribute]
    if not nodes:
        return "none"
    n = nodes[data.draw(st.integers(0, len(nodes) - 1), "node")]
    a = n.attribute[data.draw(st.integers(0, len(n.attribute) - 1), "attribute")]
    if data.draw(st.integers(0, 4), "remove") == 0:
        n.attribute.remove(a)
        return "attribute removed"
    DETAIL.append(f"{n.name}.{a.name}")
    T = onnx.AttributeProto
    if a.type == T.INT:
        a.i = data.draw(st.integers(-3, 12))
    elif a.type == T.FLOAT:
        a.f = data.draw(st.sampled_from(SPECIAL))
    elif a.type == T.INTS and len(a.ints):
        a.ints[data.draw(st.integers(0, len(a.ints) - 1))] = data.draw(st.integers(-2, 9))
    elif a.type == T.STRING:
        a.s = data.draw(st.sampled_from([b"", b"ROUND", b"FLOOR", b"CEIL", b"nearest", b"xyz", b"\xff\xfe"]))
    elif a.type == T.TENSOR:
        arr = numpy_helper.to_array(a.t).copy()
        if arr.size:
            arr.flat[0] = _cast_like(data.draw(st.sampled_from(SPECIAL)), arr.dtype)
        a.t.CopyFrom(numpy_helper.from_array(arr, a.t.name))
    return "attribute value"


def mut_shape(m, data) -> str:
    if data.draw(st.booleans(), "graph input"):
        dims = m.graph.input[0].type.tensor_type.shape.dim
        if not len(dims):
            return "none"
        d = dims[data.draw(st.integers(0, len(dims) - 1), "dim")]
        size = data.draw(st.integers(-1, 9), "size")
        if size < 0:
            d.dim_param = "N"
        else:
            d.dim_value = size
        return "input shape"
    inits = list(m.graph.initializer)
    if not inits:
        return "none"
    init = inits[data.draw(st.integers(0, len(inits) - 1), "initializer")]
    arr = numpy_helper.to_array(init)
    shape = data.draw(st.lists(st.integers(0, 6), min_size=0, max_size=4), "new shape")
    _set_array(init, np.resize(arr, shape) if arr.size else np.zeros(shape, arr.dtype))
    return "initializer shape"


def mut_version(m, data) -> str:
    if data.draw(st.booleans(), "opset"):
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                o.version = data.draw(st.integers(-1, 40), "opset")
        return "opset"
    m.ir_version = data.draw(st.integers(-1, 20), "ir_version")
    return "ir_version"


def mut_rewire(m, data) -> str:
    """One node input replaced by another tensor of the graph (possibly a later one: a cycle)."""
    names = [i.name for i in m.graph.input] + [o for n in m.graph.node for o in n.output]
    n = m.graph.node[data.draw(st.integers(0, len(m.graph.node) - 1), "node")]
    if not n.input:
        return "none"
    n.input[data.draw(st.integers(0, len(n.input) - 1), "input")] = data.draw(st.sampled_from(names), "tensor")
    return "rewired input"


MUTATIONS = {"initializer": mut_initializer, "bits": mut_bits, "attribute": mut_attribute, "shape": mut_shape,
             "version": mut_version, "rewire": mut_rewire}


def model_case(data, prev_folder: Path) -> None:
    DETAIL.clear()
    name, raw = BASES[data.draw(st.integers(0, len(BASES) - 1), "base")]
    what = data.draw(st.sampled_from(["none", "bytes"] + list(MUTATIONS)), "mutation")
    DETAIL.append(name)
    if what == "bytes":
        cut = data.draw(st.integers(0, len(raw)), "cut")
        junk = data.draw(st.binary(max_size=16), "junk")
        blob, label = raw[:cut] + junk, "truncated bytes"
    else:
        m = onnx.load_from_string(raw)
        label = MUTATIONS[what](m, data) if what != "none" else "none"
        blob = m.SerializeToString()
    command = data.draw(st.sampled_from(["check", "generate"]), "command")
    with Sandbox() as box:
        model = box / "in" / "m.onnx"
        model.write_bytes(blob)
        out = box / "out"
        prev = prev_folder if command == "generate" and data.draw(st.booleans(), "previous output") else None
        args = ["check", model, "--n", "3"] if command == "check" else [model, "-o", out]
        kind = f"model[{label}]" + (" over a previous output" if prev is not None else "")
        run_case(kind, args, box, out, prev, model)


# ------------------------------------------------------------------------------------------ CLI numbers

def _number_text():
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.integers(-10**12, 10**12).map(str), st.sampled_from(SPECIAL).map(str),
                     st.text(alphabet="0123456789.e+-xnaif ", max_size=8))


def _inputs_file(data, path: Path, shape: list) -> None:
    what = data.draw(st.sampled_from(["right", "shape", "dtype", "values", "bytes", "npy", "key"]), "inputs")
    frames = data.draw(st.integers(0, 3), "frames")
    x = np.random.default_rng(0).uniform(-2, 2, [frames] + shape).astype(np.float32)
    if what == "shape":
        x = np.zeros(data.draw(st.lists(st.integers(0, 5), max_size=5), "shape"), np.float32)
    elif what == "dtype":
        x = x.astype(data.draw(st.sampled_from(["U3", "complex64", "bool", "int64", "float16"])))
    elif what == "values" and x.size:
        x.flat[0] = data.draw(st.sampled_from(SPECIAL))
    if what == "bytes":
        path.write_bytes(data.draw(st.binary(max_size=64)))
    elif what == "npy":
        with open(path, "wb") as f:
            np.save(f, x)
    else:
        np.savez(path, **{("x" if what != "key" else "y"): x})


def cli_case(data) -> None:
    command = data.draw(st.sampled_from(["generate", "check"]), "command")
    with Sandbox() as box:
        model = box / "in" / "m.onnx"
        model.write_bytes(SMALL[1])
        out = box / "out"
        if command == "generate":
            args = [model, "-o", out]
            for opt in data.draw(st.lists(st.sampled_from(["--fps", "--clock-mhz"]), max_size=2, unique=True)):
                args += [opt, data.draw(_number_text(), opt)]
        else:
            args = ["check", model, "--n", data.draw(st.sampled_from(["1", "2", "0", "-1", "x", "2.5"]), "n")]
            if data.draw(st.booleans(), "seed"):
                args += ["--seed", data.draw(_number_text(), "seed")]
            if data.draw(st.booleans(), "inputs"):
                shape = [d.dim_value for d in onnx.load(model).graph.input[0].type.tensor_type.shape.dim][1:]
                _inputs_file(data, box / "in" / "x.npz", shape)
                args += ["--inputs", box / "in" / "x.npz"]
        run_case("cli", args, box, out, None, model)


# ------------------------------------------------------------------------------------------ board / fold files

def _junk_value():
    return st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from(SPECIAL),
                     st.text(max_size=8), st.lists(st.integers(0, 9), max_size=3),
                     st.dictionaries(st.text(max_size=4), st.integers(0, 9), max_size=2))


def _raw_file(data) -> bytes:
    return data.draw(st.one_of(st.binary(max_size=64), st.just(b""), st.just(b"x: \xff\xfe\n"),
                               st.text(max_size=40).map(lambda t: t.encode())), "raw")


def board_case(data) -> None:
    board = yaml.safe_load((BOARDS / "zybo-z7.yaml").read_text())
    how = data.draw(st.sampled_from(["set", "set", "delete", "raw"]), "how")
    if how != "raw":
        keys = [(k,) for k in board] + [(k, s) for k, v in board.items() if isinstance(v, dict) for s in v]
        path = data.draw(st.sampled_from(keys + [("extra",), ("resources", "uram")]), "key")
        parent = board
        for k in path[:-1]:
            parent = parent[k]
        if how == "delete":
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = data.draw(_junk_value(), "value")
    with Sandbox() as box:
        model = box / "in" / "m.onnx"
        model.write_bytes(SMALL[1])
        bfile = box / "in" / "myboard.yaml"
        if how == "raw":
            bfile.write_bytes(_raw_file(data))
        else:
            bfile.write_text(yaml.safe_dump(board, allow_unicode=True))
        run_case(f"board[{how}]", [model, "--board", bfile, "-o", box / "out"], box, box / "out", None, model)


SMALL_NODES: list = []


def fold_case(data) -> None:
    if not SMALL_NODES:
        with Sandbox() as box:
            (box / "m.onnx").write_bytes(SMALL[1])
            SMALL_NODES.extend(hw_nodes(box / "m.onnx"))
    how = data.draw(st.sampled_from(["entries", "entries", "raw"]), "how")
    entry = st.dictionaries(st.sampled_from(["pe", "simd", "fifo", "ram_style", "speed"]),
                            st.one_of(st.integers(-2, 16), st.booleans(), st.sampled_from(SPECIAL),
                                      st.sampled_from(["block", "auto", "lut", "4"]),
                                      st.lists(st.one_of(st.integers(-1, 4096), st.booleans()), max_size=3)),
                            max_size=3)
    fold = data.draw(st.dictionaries(st.sampled_from(SMALL_NODES + ["nosuchnode", "1"]),
                                     st.one_of(entry, _junk_value()), max_size=3), "fold")
    with Sandbox() as box:
        model = box / "in" / "m.onnx"
        model.write_bytes(SMALL[1])
        ffile = box / "in" / "fold.yaml"
        if how == "raw":
            ffile.write_bytes(_raw_file(data))
        else:
            ffile.write_text(yaml.safe_dump(fold))
        run_case(f"fold[{how}]", [model, "--fold", ffile, "-o", box / "out"], box, box / "out", None, model)


# ------------------------------------------------------------------------------------------ the tests

def _fuzz(n: int):
    # no shrinking: a case takes seconds, and the failing case's draws are printed anyway
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                    phases=[Phase.explicit, Phase.generate], print_blob=True)


@_fuzz(40)
@given(data=st.data())
def test_fuzz_models(previous_output, data):
    model_case(data, previous_output)


@_fuzz(16)
@given(data=st.data())
def test_fuzz_cli_numbers(data):
    cli_case(data)


@_fuzz(12)
@given(data=st.data())
def test_fuzz_board_files(data):
    board_case(data)


@_fuzz(12)
@given(data=st.data())
def test_fuzz_fold_files(data):
    fold_case(data)


@pytest.mark.slow
@_fuzz(400)
@given(data=st.data())
def test_fuzz_models_slow(previous_output, data):
    model_case(data, previous_output)


@pytest.mark.slow
@_fuzz(250)
@given(data=st.data())
def test_fuzz_cli_numbers_slow(data):
    cli_case(data)


@pytest.mark.slow
@_fuzz(200)
@given(data=st.data())
def test_fuzz_board_files_slow(data):
    board_case(data)


@pytest.mark.slow
@_fuzz(200)
@given(data=st.data())
def test_fuzz_fold_files_slow(data):
    fold_case(data)
