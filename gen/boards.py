"""Board descriptions (boards/*.yaml): part, clock, resources, DMA width."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import GenError

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"


def known_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def load_board(name: str) -> dict:
    path = Path(name)
    if not path.suffix:
        path = BOARDS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise GenError(f"unknown board '{name}'. Known boards: {', '.join(known_boards())} "
                       f"(or give the path of a board .yaml)")
    try:
        board = yaml.safe_load(path.read_text())
        for key in ("part", "clock_mhz", "resources", "dma"):
            board[key]
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise GenError(f"{path}: not a valid board file ({type(e).__name__}: {e})") from None
    return board
