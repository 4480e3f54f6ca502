"""Where gen keeps its build caches (Verilator builds of the simulation harness, their .mem files and run folders,
Verilator's runtime objects): `$GEN_CACHE_DIR` when set; else `<checkout>/build` when gen runs from a source
checkout (an editable install: the folder above the package holds pyproject.toml); else the user cache folder
`$XDG_CACHE_HOME/gen` (default `~/.cache/gen`). Everything under it can be deleted at any time."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The root of gen's caches (not created here)."""
    env = os.environ.get("GEN_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        return root / "build"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "gen"
