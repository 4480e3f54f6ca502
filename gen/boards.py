"""Board descriptions (gen/board_files/*.yaml): part, clock, resources, DMA width - read through a typed schema.

Schema (`*` required):
    name: str (default: the file name)      description: str (default: name)     part*: str      board_part: str
    clock_mhz*: number, 1 to 250             ddr_bytes: integer >= 1
    resources*: {lut*, ff*, bram36*, dsp*: integer >= 0}
    dma*: {width_bits*: 32 or 64, port: str}
    address_map: {dma, accel: integer >= 0, span: integer >= 1}
    ps7: {fallback: {PCW_* key: str or number}}
    image_irqs: [integer 0 to 127]   (GIC SPI cells, number - 32, that the board's standard Linux images claim)
"""

from __future__ import annotations

from pathlib import Path

from .errors import GenError
from .schema import (
    INT,
    LIST,
    MAPPING,
    NUMBER,
    STRING,
    bad_value,
    has_type,
    no_unknown_keys,
    read_yaml,
    want,
    want_range,
)

BOARDS_DIR = Path(__file__).resolve().parent / "board_files"   # the bundled boards (package data)

# The design clock is the PS's fabric clock FCLK0 (vivado/build.tcl); a Zynq-7000 PS generates fabric clocks of
# at most 250 MHz (DS187 / DS190, FCLK), and below 1 MHz nothing useful runs. The CLI's --clock-mhz uses the same
# range.
CLOCK_MHZ_MIN, CLOCK_MHZ_MAX = 1.0, 250.0
DMA_WIDTHS = (32, 64)      # the Zynq-7000 S_AXI_HP ports are 32 or 64 bits wide
KEYS = ("name", "description", "part", "board_part", "clock_mhz", "resources", "dma", "ddr_bytes", "address_map",
        "ps7", "image_irqs")
RESOURCES = ("lut", "ff", "bram36", "dsp")


def known_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def board_path(name: str) -> Path:
    path = Path(name)
    if not path.suffix:
        path = BOARDS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise GenError(f"unknown board '{name}'. Known boards: {', '.join(known_boards())} "
                       f"(or give the path of a board .yaml)")
    return path


def load_board(name: str) -> dict:
    path = board_path(name)
    where = f"board file {path}"
    board = read_yaml(path, "board file")
    if not isinstance(board, dict):
        raise GenError(f"{where}: expected a mapping of keys ({', '.join(KEYS)}), got {type(board).__name__}")
    check_board(board, where)
    # optional keys the later passes read directly (the firmware README, the report)
    board.setdefault("name", path.stem)
    board.setdefault("description", board["name"])
    return board


def check_board(board: dict, where: str) -> None:
    no_unknown_keys(board, KEYS, where)
    for key in ("name", "description", "board_part"):
        want(board, key, STRING, where, required=False)
    want(board, "part", STRING, where)
    want_range(board, "clock_mhz", NUMBER, CLOCK_MHZ_MIN, CLOCK_MHZ_MAX, where, unit=" (MHz)")
    want_range(board, "ddr_bytes", INT, 1, None, where, required=False)
    res = want(board, "resources", MAPPING, where)
    no_unknown_keys(res, RESOURCES, where, "resources.")
    for k in RESOURCES:
        want_range(res, k, INT, 0, None, where, "resources.")
    dma = want(board, "dma", MAPPING, where)
    no_unknown_keys(dma, ("width_bits", "port"), where, "dma.")
    want(dma, "port", STRING, where, "dma.", required=False)
    if want(dma, "width_bits", INT, where, "dma.") not in DMA_WIDTHS:
        raise bad_value(where, "dma.width_bits", " or ".join(map(str, DMA_WIDTHS)), dma["width_bits"])
    amap = want(board, "address_map", MAPPING, where, required=False, default={})
    no_unknown_keys(amap, ("dma", "accel", "span"), where, "address_map.")
    for k, lo in (("dma", 0), ("accel", 0), ("span", 1)):
        want_range(amap, k, INT, lo, None, where, "address_map.", required=False)
    ps7 = want(board, "ps7", MAPPING, where, required=False, default={})
    no_unknown_keys(ps7, ("fallback",), where, "ps7.")
    for k, v in want(ps7, "fallback", MAPPING, where, "ps7.", required=False, default={}).items():
        if not isinstance(k, str) or not (has_type(v, STRING) or has_type(v, NUMBER)):
            raise bad_value(where, f"ps7.fallback.{k}", "a string or number (a Vivado PS7 CONFIG value)", v)
    for v in want(board, "image_irqs", LIST, where, required=False, default=[]):
        if not has_type(v, INT) or not 0 <= v < 128:
            raise bad_value(where, "image_irqs", "a list of GIC SPI numbers 0 to 127", v)


def clock_mhz_of(board: dict, folding: dict | None = None, requested: float | None = None) -> float:
    """The one rule for the design clock, in MHz: the clock asked for (`--clock-mhz`, a caller's argument), else
    the one the design was folded for (folding "clock_mhz", kept in design.json by `python -m gen`, or the fold
    summary's), else the board's. `python -m gen` checks the result with vendor.system.fclk0 once; everything
    downstream (RTL CLOCK_KHZ, firmware, simulated device, Vivado script, report) reads it back through here."""
    if requested:
        return float(requested)
    from .fold.fold import META  # the fold summary's key (gen.fold does not import this module)

    folding = folding or {}
    mhz = folding.get("clock_mhz", (folding.get(META) or {}).get("clock_mhz"))
    return float(mhz if mhz is not None else board["clock_mhz"])
