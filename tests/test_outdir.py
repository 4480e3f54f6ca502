"""The output folder is the user's (issue 13, finding 2): gen/outdir.py and `python -m gen -o OUT`."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gen import outdir
from gen.errors import GenError

# a model of the repository, so these tests run wherever the checkout is (CI clones it without ../shared)
MODEL = Path(__file__).resolve().parents[1] / "examples" / "example_cnn.onnx"

VIVADO_MAKEFILE = "bitstream: x.bit\n\nclean:\n\trm -rf project .Xil vivado*.log *.rpt x.bit x.bit.bin\n"
KERNEL_MAKEFILE = "all:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n\nclean:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) clean\n"


def _fake_output(root: Path) -> Path:
    """A folder as gen leaves it: some files, two Makefiles, the marker."""
    (root / "rtl").mkdir(parents=True)
    (root / "rtl" / "accel.sv").write_text("module accel; endmodule\n")
    (root / "vivado").mkdir()
    (root / "vivado" / "Makefile").write_text(VIVADO_MAKEFILE)
    (root / "firmware" / "kernel").mkdir(parents=True)
    (root / "firmware" / "kernel" / "Makefile").write_text(KERNEL_MAKEFILE)
    (root / "firmware" / "kernel" / "accel_drv.c").write_text("int x;\n")
    (root / "firmware" / "host").mkdir()
    (root / "firmware" / "host" / "accel_proto.py").write_text("X = 1\n")
    outdir.write_marker(root)
    return root


def _hidden(parent: Path) -> list:
    return [p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


# ---------------------------------------------------------------------------------------------- check()
def test_new_empty_and_file(tmp_path):
    assert outdir.check(tmp_path / "new") == "new"
    (tmp_path / "empty").mkdir()
    assert outdir.check(tmp_path / "empty") == "fill"
    (tmp_path / "f").write_text("mine")
    with pytest.raises(GenError, match="is a file"):
        outdir.check(tmp_path / "f")


def test_foreign_folder_is_refused_naming_the_first_entry(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "zz.txt").write_text("x")
    (d / "model.onnx").write_text("x")
    with pytest.raises(GenError, match=r"output folder .*d is not empty and not an earlier gen output .* model\.onnx"):
        outdir.check(d)


def test_symlink_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(GenError, match="symbolic link"):
        outdir.check(tmp_path / "link")


def test_previous_output_with_its_build_outputs_is_replaceable(tmp_path):
    out = _fake_output(tmp_path / "o")
    # what the Makefiles' clean rules (and Python for gen's .py files) say a build leaves there
    (out / "vivado" / "project" / "sub").mkdir(parents=True)
    (out / "vivado" / "project" / "sub" / "x.dcp").write_text("x")
    for f in ("vivado/timing.rpt", "vivado/vivado.log", "vivado/x.bit", "firmware/kernel/accel_drv.ko",
              "firmware/kernel/.accel_drv.o.cmd", "firmware/kernel/modules.order"):
        (out / f).write_text("x")
    (out / "firmware" / "host" / "__pycache__").mkdir()
    (out / "firmware" / "host" / "__pycache__" / "accel_proto.cpython-312.pyc").write_text("x")
    assert outdir.check(out) == "replace"


@pytest.mark.parametrize("entry", ["notes.txt", "rtl/mine.sv", "vivado/design.xdc", "firmware/kernel/readme",
                                   "firmware/host/__pycache__/other.cpython-312.pyc", "data/"])
def test_foreign_entry_in_previous_output_is_refused(tmp_path, entry):
    out = _fake_output(tmp_path / "o")
    p = out / entry.rstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.mkdir() if entry.endswith("/") else p.write_text("mine")
    with pytest.raises(GenError, match=f"holds {entry.rstrip('/')}, which gen did not write"):
        outdir.check(out)


def test_changed_gen_file_is_refused(tmp_path):
    out = _fake_output(tmp_path / "o")
    (out / "rtl" / "accel.sv").write_text("module accel; // my fix\nendmodule\n")
    with pytest.raises(GenError, match="rtl/accel.sv, which was changed since gen wrote it"):
        outdir.check(out)


def test_broken_marker_is_not_a_gen_output(tmp_path):
    out = _fake_output(tmp_path / "o")
    (out / outdir.MARKER).write_text("{not json")
    with pytest.raises(GenError, match="not an earlier gen output"):
        outdir.check(out)


def test_input_inside_and_current_folder(tmp_path, monkeypatch):
    out = _fake_output(tmp_path / "o")
    with pytest.raises(GenError, match="holds the input file"):
        outdir.check(out, inputs=[out / "rtl" / "accel.sv"])
    monkeypatch.chdir(out / "rtl")
    with pytest.raises(GenError, match="current folder"):
        outdir.check(Path(".."))
    e = tmp_path / "e"
    e.mkdir()
    monkeypatch.chdir(e)
    assert outdir.check(Path(".")) == "fill"


def test_clean_patterns_of_the_generated_makefiles():
    assert outdir.clean_patterns(VIVADO_MAKEFILE) == ("project", ".Xil", "vivado*.log", "*.rpt", "x.bit",
                                                      "x.bit.bin")
    assert outdir.clean_patterns(KERNEL_MAKEFILE) == outdir.KBUILD_CLEAN
    assert outdir.clean_patterns("sim:\n\tpython run.py\n") == ()


# --------------------------------------------------------------------------------------------- commit()
@pytest.mark.parametrize("swap", ["exchange", "two renames"])
def test_replace_previous_output(tmp_path, monkeypatch, swap):
    if swap == "two renames":
        monkeypatch.setattr(outdir, "exchange", lambda a, b: False)
    out = _fake_output(tmp_path / "o")
    (out / "vivado" / "timing.rpt").write_text("old build")
    st = outdir.prepare(out)
    assert st.mode == "replace" and st.tmp.parent == tmp_path
    (st.tmp / "new.txt").write_text("new")
    outdir.commit(st)
    assert sorted(p.name for p in out.iterdir()) == [outdir.MARKER, "new.txt"]
    assert _hidden(tmp_path) == []
    assert outdir.check(out) == "replace"


def test_exchange_swaps(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "in_a").write_text("")
    if not outdir.exchange(a, b):
        pytest.skip("renameat2 RENAME_EXCHANGE unavailable here")
    assert (b / "in_a").exists() and not (a / "in_a").exists()


def test_fill_keeps_the_empty_folder(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    ino = out.stat().st_ino
    st = outdir.prepare(out)
    (st.tmp / "x").write_text("x")
    outdir.commit(st)
    assert out.stat().st_ino == ino and (out / "x").exists() and (out / outdir.MARKER).exists()
    assert _hidden(tmp_path) == []


def test_file_added_while_working_is_kept(tmp_path):
    out = _fake_output(tmp_path / "o")
    st = outdir.prepare(out)
    (out / "late.txt").write_text("mine")
    with pytest.raises(GenError, match="late.txt"):
        outdir.commit(st)
    outdir.discard(st)
    assert (out / "late.txt").read_text() == "mine" and (out / "rtl" / "accel.sv").exists()
    assert _hidden(tmp_path) == []


def test_discard_removes_created_parents(tmp_path):
    st = outdir.prepare(tmp_path / "a" / "b" / "o")
    assert st.tmp.exists()
    outdir.discard(st)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_folders_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".o.tmp-{dead.pid}-abc").mkdir()
    (tmp_path / f".o.old-{dead.pid}").mkdir()
    live = tmp_path / f".o.tmp-{os.getppid()}-xyz"
    live.mkdir()
    st = outdir.prepare(tmp_path / "o")
    outdir.discard(st)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name]


def test_sigterm_while_making_the_temporary_folder_leaves_nothing(tmp_path, monkeypatch):
    real = outdir._mkdtemp

    def mkdtemp_then_sigterm(out):
        t = real(out)
        os.kill(os.getpid(), signal.SIGTERM)   # held until the block ends, then KeyboardInterrupt
        return t
    monkeypatch.setattr(outdir, "_mkdtemp", mkdtemp_then_sigterm)
    restore = outdir.terminate_as_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            outdir.prepare(tmp_path / "a" / "o")
    finally:
        restore()
    assert list(tmp_path.iterdir()) == []


def test_signals_wait_for_the_critical_section():
    # Python's own SIGINT handler, as in `python -m gen` (a pytest-xdist worker ignores SIGINT)
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with outdir.held_signals():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                done.append(1)
    finally:
        signal.signal(signal.SIGINT, old)
    assert done == [1]


# ------------------------------------------------------------------------------------------------- CLI
def gen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gen", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))


def _one_error(r):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (r.returncode, r.stderr)
    return lines[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("g") / "o"
    r = gen(MODEL, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def test_cli_regenerates_over_its_output_and_build_products(generated):
    out = generated
    (out / "vivado" / "timing.rpt").write_text("x")
    (out / "firmware" / "libaccel.so").write_text("x")
    r = gen(MODEL, "-o", out)
    assert r.returncode == 0, r.stderr
    assert not (out / "vivado" / "timing.rpt").exists() and (out / "design.json").exists()
    assert _hidden(out.parent) == []


def test_cli_refuses_user_files(generated):
    (generated / "notes.txt").write_text("mine")
    try:
        err = _one_error(gen(MODEL, "-o", generated))
        assert str(generated) in err and "notes.txt" in err
        assert (generated / "notes.txt").read_text() == "mine"
    finally:
        (generated / "notes.txt").unlink()


def test_cli_refuses_a_file_and_a_busy_current_folder(tmp_path):
    f = tmp_path / "f"
    f.write_text("mine")
    assert "is a file" in _one_error(gen(MODEL, "-o", f))
    assert f.read_text() == "mine" and _hidden(tmp_path) == []
    assert "current folder" in _one_error(gen(MODEL, "-o", ".", cwd=tmp_path))
    assert "current folder" in _one_error(gen(MODEL, "-o", "..", cwd=tmp_path))
    model = tmp_path / "m.onnx"
    model.write_bytes(MODEL.read_bytes())
    assert "holds the input file" in _one_error(gen(model, "-o", tmp_path))


def test_cli_empty_current_folder_is_filled(tmp_path):
    cwd = tmp_path / "here"
    cwd.mkdir()
    r = gen(MODEL, "-o", ".", cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert (cwd / "design.json").exists() and outdir.check(cwd) == "replace" and _hidden(tmp_path) == []


def test_cli_sigterm_leaves_the_previous_output(generated):

    p = subprocess.Popen([sys.executable, "-m", "gen", str(MODEL), "-o", str(generated)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not _hidden(generated.parent) and p.poll() is None:
        time.sleep(0.02)   # until gen has its temporary folder
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert "Traceback" not in err
    assert _hidden(generated.parent) == []
    assert outdir.check(generated) == "replace"

