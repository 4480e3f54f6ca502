"""Compiler wrapper (Verilator's OBJCACHE hook) caching the design-independent runtime objects.

Verilator rebuilds verilated.o, verilated_vpi.o, ... in every fresh build directory
(about 10 s of CPU here). They do not depend on the design, so we keep one copy per compiler command line.
Everything else is compiled normally.

usage (set by gen.sim.runner): GEN_OBJCACHE_DIR=<dir> OBJCACHE="<python> .../gen/sim/objcache.py" make ...
Without GEN_OBJCACHE_DIR every command runs uncached.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

_DIR = os.environ.get("GEN_OBJCACHE_DIR")   # gen.sim.runner: <cache>/sim_cache/objs (gen/cache.py)
CACHE = Path(_DIR) if _DIR else None


def main(argv: list[str]) -> int:
    src = argv[-1]
    # only Verilator's own runtime: cocotb's verilator.cpp includes the design's Vtop.h
    cacheable = src.endswith(".cpp") and "/verilator/include/" in src
    if CACHE is None or not cacheable or "-o" not in argv:
        return subprocess.call(argv)
    out = argv[argv.index("-o") + 1]
    st = os.stat(src)
    key = hashlib.sha256("\0".join(argv + [str(st.st_size), str(int(st.st_mtime))]).encode()).hexdigest()[:24]
    obj = CACHE / f"{Path(out).stem}-{key}.o"
    dep = CACHE / f"{Path(out).stem}-{key}.d"
    if obj.exists() and dep.exists():
        shutil.copyfile(obj, out)
        shutil.copyfile(dep, Path(out).with_suffix(".d"))
        return 0
    rc = subprocess.call(argv)
    if rc == 0:
        CACHE.mkdir(parents=True, exist_ok=True)
        for a, b in ((out, obj), (Path(out).with_suffix(".d"), dep)):
            if Path(a).exists():
                tmp = b.with_suffix(f".tmp{os.getpid()}")
                shutil.copyfile(a, tmp)
                os.replace(tmp, b)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
