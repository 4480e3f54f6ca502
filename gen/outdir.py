"""The output folder is the user's: gen never deletes or overwrites anything it did not write.

gen writes the whole output into a fresh hidden folder beside OUT (`.NAME.tmp-PID-*`) and only then puts it
in place:
  - OUT missing: a rename;
  - OUT an empty folder: the finished entries are moved into it (the folder itself, maybe a shell's current
    folder, stays);
  - OUT a previous gen output (its marker `.gen-output.json` lists every file gen wrote, with size and sha256):
    the two folders are swapped atomically (renameat2 RENAME_EXCHANGE; two renames where the kernel or file
    system lacks it) and the old output is deleted.
Anything else is refused with one message naming the folder and the first entry gen did not write. Files the
output's own Makefiles produce count as gen's: the patterns are read from the `clean:` rule of every Makefile
the previous output holds (kbuild's external-module clean where a Makefile delegates to it), and Python's
byte-code caches of gen-written .py files. A gen-written file that was changed since is the user's too.
SIGINT, SIGTERM and SIGHUP are held off while folders are renamed or deleted, so an interrupt never leaves a
`.NAME.tmp-*` / `.NAME.old-*` folder behind; those of a killed run (its PID gone) are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import GenError

MARKER = ".gen-output.json"
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Linux top-level Makefile, target `clean` with M=<dir> (the generated kernel/Makefile's clean delegates to it):
# the files it removes in the module's folder
KBUILD_CLEAN = ("*.[aios]", "*.ko", "*.ko.*", ".*.cmd", "*.mod", "*.mod.c", ".*.d", ".*.tmp", ".tmp_*", "*.dwo",
                "*.lst", "*.su", "*.symtypes", "*.gcno", "modules.order", "Module.symvers", "modules.nsdeps",
                "compile_commands.json")


@dataclass(frozen=True)
class Staging:
    out: Path                # the output folder, absolute (not resolved: a symlinked parent stays as given)
    shown: str               # the folder as the user named it, for messages
    tmp: Path                # where gen writes; becomes `out` on commit
    mode: str                # "new" | "fill" (existing empty folder) | "replace" (previous gen output)
    made: tuple = ()         # missing parent folders gen created (removed again when nothing is committed)


# ------------------------------------------------------------------------------------------------- the manifest
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(root: Path) -> dict:
    """Every file under `root` (relative POSIX path -> size and sha256; a link -> its target)."""
    files = {}
    for d, dirs, names in os.walk(root):
        dirs.sort()
        for n in sorted(names + [x for x in dirs if os.path.islink(os.path.join(d, x))]):
            p = Path(d) / n
            rel = p.relative_to(root).as_posix()
            if rel == MARKER:
                continue
            files[rel] = {"link": os.readlink(p)} if p.is_symlink() else {"bytes": p.stat().st_size,
                                                                          "sha256": _sha256(p)}
    return files


def write_marker(root: Path) -> None:
    (root / MARKER).write_text(json.dumps({"generator": "gen", "version": __version__,
                                           "files": manifest(root)}, indent=1, sort_keys=True) + "\n")


def read_marker(root: Path) -> dict | None:
    """The previous output's manifest, or None when `root` holds no (readable) gen marker."""
    try:
        d = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(d, dict) or d.get("generator") != "gen" or not isinstance(d.get("files"), dict):
        return None
    return d["files"]


# ------------------------------------------------------------------------------------------ build outputs
def clean_patterns(makefile_text: str) -> tuple[str, ...]:
    """The paths (glob patterns, relative to the Makefile's folder) a Makefile's `clean:` rule removes:
    `rm` arguments, or kbuild's list for `$(MAKE) -C $(KDIR) M=$(CURDIR) clean`. Other commands add nothing."""
    pats: list[str] = []
    lines = makefile_text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"clean\s*:", ln)), None)
    if start is None:
        return ()
    for ln in lines[start + 1:]:
        if not ln.startswith("\t"):
            break
        try:
            words = shlex.split(ln.strip().lstrip("@-"))
        except ValueError:
            continue
        if words and words[0] == "rm":
            pats += [w for w in words[1:] if not w.startswith("-")]
        elif words and "M=$(CURDIR)" in words and words[-1] == "clean":
            pats += KBUILD_CLEAN
    return tuple(pats)


def build_outputs(root: Path, files: dict) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(folder relative to root, clean patterns) of each Makefile gen wrote into the previous output."""
    res = []
    for rel in sorted(files):
        if Path(rel).name == "Makefile" and (root / rel).is_file():
            try:
                text = (root / rel).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            res.append((Path(rel).parent.as_posix(), clean_patterns(text)))
    return tuple(res)


def _is_build_output(rel: str, outputs) -> bool:
    p = Path(rel)
    for folder, pats in outputs:
        base = Path(folder)
        if folder != "." and base not in p.parents:
            continue
        sub = p.relative_to(base) if folder != "." else p
        # rm removes names in the Makefile's folder; kbuild's find also matches below it
        if any(fnmatch.fnmatchcase(sub.as_posix(), pat) for pat in pats) or \
                (len(sub.parts) > 1 and any(fnmatch.fnmatchcase(sub.name, pat) for pat in pats if pat in KBUILD_CLEAN)):
            return True
    return False


def _is_pycache(rel: str, files: dict) -> bool:
    """A __pycache__ entry compiled from a gen-written .py file beside it (Python writes these when the host
    client or the ctypes wrapper is run from the output)."""
    p = Path(rel)
    if p.name == "__pycache__":
        return any(Path(f).parent == p.parent and f.endswith(".py") for f in files)
    if p.parent.name != "__pycache__":
        return False
    stem = p.name.split(".")[0]
    return p.suffix == ".pyc" and (p.parent.parent / f"{stem}.py").as_posix() in files


# ------------------------------------------------------------------------------------------------ checking
def _foreign(root: Path, files: dict) -> str | None:
    """The first entry under a previous output that gen did not write (or that was changed since), as a
    message fragment; None when every entry is gen's."""
    outputs = build_outputs(root, files)
    dirs_of_files = {p.as_posix() for f in files for p in Path(f).parents}
    for d, dirs, names in os.walk(root):
        dirs.sort()
        keep = []
        for n in sorted(dirs + names):
            p = Path(d) / n
            rel = p.relative_to(root).as_posix()
            if rel == MARKER or _is_build_output(rel, outputs):
                continue
            if _is_pycache(rel, files):
                if n in dirs:
                    keep.append(n)   # its entries are checked one by one
                continue
            if rel in files:
                if _changed(p, files[rel]):
                    return f"{rel}, which was changed since gen wrote it: save your changes elsewhere (gen would " \
                           f"overwrite them)"
                continue
            if n in dirs and rel in dirs_of_files and not p.is_symlink():
                keep.append(n)
                continue
            return f"{rel}, which gen did not write: move it out of the folder (gen replaces the whole folder)"
        dirs[:] = [x for x in dirs if x in keep]
    return None


def _changed(p: Path, rec: dict) -> bool:
    if "link" in rec:
        return not p.is_symlink() or os.readlink(p) != rec["link"]
    if p.is_symlink() or not p.is_file():
        return True
    st = p.stat()
    return st.st_size != rec.get("bytes") or _sha256(p) != rec.get("sha256")


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check(out: Path, inputs=(), shown: str | None = None) -> str:
    """Whether gen may write `out`: "new", "fill" (an empty folder) or "replace" (a previous gen output).
    Raises GenError (one line: the folder, what is in the way, what to do) otherwise."""
    shown = shown or str(out)
    out = Path(os.path.abspath(out))
    if out.is_symlink():
        raise GenError(f"output folder {shown} is a symbolic link: give the folder it points to, or a new folder "
                       f"(-o)")
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise GenError(f"output folder {shown} is a file: gen writes a folder there and never replaces a file; "
                       f"choose another path with -o")
    real = out.resolve()
    try:
        entries = sorted(os.listdir(out))
    except OSError as e:
        raise GenError(f"output folder {shown}: cannot read it ({e.strerror})") from None
    if not entries:
        return "fill"
    for f in inputs:
        if f is not None and Path(f).exists() and _inside(Path(f).resolve(), real):
            raise GenError(f"output folder {shown} holds the input file {f}: gen replaces the whole folder; "
                           f"choose a separate output folder with -o")
    try:
        cwd = Path.cwd().resolve()
    except OSError:   # the current folder was deleted: it cannot be inside OUT
        cwd = None
    if cwd is not None and _inside(cwd, real):
        raise GenError(f"output folder {shown} is the current folder or holds it, and it is not empty: gen "
                       f"replaces the whole output folder; choose a new or empty folder with -o")
    files = read_marker(out)
    if files is None:
        raise GenError(f"output folder {shown} is not empty and not an earlier gen output (no {MARKER}): it holds "
                       f"{entries[0]}; choose a new or empty folder with -o, or empty this one")
    bad = _foreign(out, files)
    if bad:
        raise GenError(f"output folder {shown} is an earlier gen output but holds {bad}, or choose another folder "
                       f"with -o")
    return "replace"


# --------------------------------------------------------------------------------------------- committing
@contextlib.contextmanager
def held_signals():
    """SIGINT / SIGTERM / SIGHUP wait until the block is done (renames and deletes are not cut half way), then
    take effect as usual. Python handlers, not a signal mask: any thread (onnxruntime's, rich's) may receive
    the signal, but its Python handler always runs in the main thread, which this replaces for the block."""
    got: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: got.append(signum)) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if got:
            signal.raise_signal(got[0])


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def terminate_as_interrupt():
    """SIGTERM and SIGHUP raise KeyboardInterrupt like SIGINT, so the cleanup of a caller's `except` runs for
    them too. Returns the function that puts the previous handlers back."""
    old = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)
    return restore


def _stale_pid(name: str, stem: str) -> int | None:
    m = re.fullmatch(rf"\.{re.escape(stem)}\.(?:tmp|old)-(\d+)(?:-.*)?", name)
    return int(m.group(1)) if m else None


def _remove_stale(parent: Path, stem: str) -> None:
    """Folders of an earlier run on the same output that was killed (SIGKILL, power loss) before cleaning up."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for n in names:
        pid = _stale_pid(n, stem)
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(parent / n, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(out, inputs=(), shown: str | None = None) -> Staging:
    """Check `out` and make the temporary folder gen writes into (beside `out`, on the same file system)."""
    shown = shown or str(out)
    mode = check(out, inputs, shown)
    out = Path(os.path.abspath(out))
    made = []
    p = out.parent
    while not p.exists():
        made.append(p)
        p = p.parent
    tmp = None
    try:
        with held_signals():
            for d in reversed(made):
                d.mkdir()
            _remove_stale(out.parent, out.name)
            tmp = Path(_mkdtemp(out))
    except OSError as e:
        _rmdirs(made)
        raise GenError(f"output folder {shown}: cannot write there ({e.strerror})") from None
    except BaseException:   # a signal held during the block, delivered at its end: the caller has no Staging
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _rmdirs(made)
        raise
    return Staging(out=out, shown=shown, tmp=tmp, mode=mode, made=tuple(made))


def _mkdtemp(out: Path) -> str:
    import tempfile
    return tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=out.parent)


def _rmdirs(dirs) -> None:
    for d in dirs:  # innermost first; only if still empty
        with contextlib.suppress(OSError):
            os.rmdir(d)


def discard(st: Staging) -> None:
    """Nothing committed: remove the temporary folder and the parents gen created."""
    with held_signals():
        shutil.rmtree(st.tmp, ignore_errors=True)
        _rmdirs(st.made)


def commit(st: Staging, inputs=()) -> None:
    """Put the finished temporary folder in place of `out` (see the module doc). `out` is checked again first:
    a file the user put there while gen was working is not lost."""
    write_marker(st.tmp)
    with held_signals():
        mode = check(st.out, inputs, st.shown)
        if mode == "new":
            os.rename(st.tmp, st.out)
        elif mode == "fill":
            _fill(st.tmp, st.out)
        else:
            _replace(st.tmp, st.out)


def _fill(tmp: Path, out: Path) -> None:
    moved = []
    try:
        for n in sorted(os.listdir(tmp), key=lambda n: n == MARKER):   # the marker last
            os.rename(tmp / n, out / n)
            moved.append(n)
    except OSError:
        for n in moved:   # back out: the folder is empty again, as the user gave it
            with contextlib.suppress(OSError):
                os.rename(out / n, tmp / n)
        raise
    os.rmdir(tmp)


def _replace(tmp: Path, out: Path) -> None:
    if exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)   # now the old output
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unavailable (other OS, old
    kernel or C library, a file system without it), so the caller falls back to two renames."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:   # AT_FDCWD, RENAME_EXCHANGE
        return True
    e = ctypes.get_errno()
    if e in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(e, os.strerror(e), str(b))


def _renameat2():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn
