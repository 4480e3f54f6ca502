"""The generated firmware compiles: kernel module (Debian amd64 headers with W=1 and sparse, ARM cross build
against a prepared multi_v7 tree), device-tree overlay (dtc -@), libaccel and server (-Wall -Werror, native and
ARM). Kernel checks run under the `kernel` marker (.ci/run installs the apt packages and enables it)."""

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gen.boards import load_board
from gen.firmware import write_firmware
from gen.vendor.system import IRQ_F2P_FIRST_SPI, IRQS

from .test_firmware_e2e import make_design

ROOT = Path(__file__).resolve().parents[1]
ARM_TREE = ROOT / "build" / "linux-arm"
ARM_CC = "arm-linux-gnueabihf-gcc"


def missing(reason):
    """Skip when a tool is absent - except in CI (.ci/run sets GEN_REQUIRE_KERNEL=1 after installing them),
    where a silent skip would hide a broken install step."""
    if os.environ.get("GEN_REQUIRE_KERNEL"):
        pytest.fail(f"GEN_REQUIRE_KERNEL is set but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fw")
    _, design = make_design(tmp, "conv")
    return write_firmware(tmp, design, load_board("zybo-z7"))


def _compiler_warnings(text):
    """gcc/sparse diagnostics ('file:line:col: warning: ...' or 'error'), not make's or modpost's notes."""
    return [line for line in text.splitlines() if re.search(r":\d+(:\d+)?: (warning|error)", line)]


def test_userspace_builds_with_werror(fw):
    r = subprocess.run(["make", "-C", str(fw)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "-Wall" in r.stdout and "-Werror" in r.stdout and not _compiler_warnings(r.stderr)
    assert (fw / "libaccel.so").exists() and (fw / "accel_server").exists()
    r = subprocess.run([str(fw / "accel_server"), "-h"], capture_output=True, text=True)
    assert r.returncode == 0 and "unix:SOCKET" in r.stderr


def test_userspace_cross_builds_for_arm(fw, tmp_path):
    if shutil.which(ARM_CC) is None:
        missing(f"{ARM_CC} not installed (apt-get install gcc-arm-linux-gnueabihf)")
    dst = tmp_path / "fw"
    shutil.copytree(fw, dst)
    subprocess.run(["make", "-C", str(dst), "clean"], capture_output=True)
    r = subprocess.run(["make", "-C", str(dst), f"CC={ARM_CC}", "AR=arm-linux-gnueabihf-ar"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    head = (dst / "accel_server").read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[18] == 40   # e_machine EM_ARM


def test_overlay_compiles(fw, tmp_path):
    if shutil.which("dtc") is None:
        missing("dtc not installed (apt-get install device-tree-compiler)")
    src = next((fw / "overlay").glob("*.dtso"))
    out = tmp_path / "o.dtbo"
    r = subprocess.run(["dtc", "-@", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    back = subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(out)], capture_output=True, text=True).stdout
    assert 'compatible = "xlnx,axi-dma-1.00.a"' in back and 'dma-names = "tx\\0rx"' in back
    assert "xlnx,axi-dma-mm2s-channel" in back and "xlnx,axi-dma-s2mm-channel" in back
    assert "__fixups__" in back and "fpga_full" in back and "amba" in back
    b = load_board("zybo-z7")["address_map"]
    assert f"reg = <0x{b['dma']:x} 0x{b['span']:x}>" in back and f"reg = <0x{b['accel']:x} 0x{b['span']:x}>" in back
    # interrupts: IRQ_F2P[i] = SPI 61 + i -> <0 (29 + i) type>, in build.tcl's xlconcat order
    for i, (_, kind) in enumerate(IRQS):
        assert f"0x{IRQ_F2P_FIRST_SPI + i - 32:02x} 0x{kind:02x}" in back


def _headers():
    return sorted(glob.glob("/usr/src/linux-headers-*-amd64"))


@pytest.mark.kernel
def test_kernel_module_amd64_w1_sparse(fw, tmp_path):
    heads = _headers()
    if not heads:
        missing("Debian linux-headers-amd64 not installed (apt-get install linux-headers-amd64 sparse)")
    if shutil.which("sparse") is None:
        missing("sparse not installed (apt-get install sparse)")
    kdir = tmp_path / "kernel"
    shutil.copytree(fw / "kernel", kdir)
    r = subprocess.run(["make", "-C", heads[-1], f"M={kdir}", "W=1", "C=2", "modules"], capture_output=True,
                       text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "CHECK" in r.stdout        # sparse ran over accel_drv.c
    assert not _compiler_warnings(out), out
    assert not [line for line in out.splitlines() if "warning" in line.lower()], out
    assert list(kdir.glob("*_accel.ko"))


@pytest.mark.kernel
def test_kernel_module_cross_arm(fw, tmp_path):
    if not (ARM_TREE / ".prepared").exists():
        missing(f"no prepared ARM kernel tree in {ARM_TREE} (gen/firmware/src/prepare-arm-kernel.sh, run by .ci/run)")
    kdir = tmp_path / "kernel"
    shutil.copytree(fw / "kernel", kdir)
    r = subprocess.run(["make", "-C", str(ARM_TREE), f"M={kdir}", "ARCH=arm",
                        "CROSS_COMPILE=arm-linux-gnueabihf-", "W=1", "modules"], capture_output=True, text=True,
                       timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # compiler clean; modpost's "undefined" notes only say the tree has no vmlinux symbol table (no full build)
    assert not _compiler_warnings(out), out
    ko = next(kdir.glob("*_accel.ko"))
    head = ko.read_bytes()[:20]
    assert head[:4] == b"\x7fELF" and head[4] == 1 and head[18] == 40   # 32-bit ARM
    info = subprocess.run(["modinfo", str(ko)], capture_output=True, text=True).stdout if shutil.which("modinfo") \
        else ""
    if info:
        assert "of:N*T*Cgen," in info and "timeout_ms" in info
