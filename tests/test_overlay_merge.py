"""The generated device-tree overlay applied (fdtoverlay) to the base tree of each supported board image
(tests/data/dt: the Zynq-7000 PS nodes of Linux's zynq-7000.dtsi, the board's enabled peripherals, PYNQ's
generic-uio node): it resolves against the base's labels, no GIC interrupt is claimed by two devices, and FCLK0
gets the design clock's rate (assigned-clocks) before the DMA or the accelerator probes."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gen.boards import load_board
from gen.firmware import write_firmware
from gen.vendor.system import FCLK0_DT_CLOCK, design_clock_mhz, fclk0

from .test_firmware_e2e import make_design

DT = Path(__file__).resolve().parent / "data" / "dt"
# board -> the base trees of its standard images
IMAGES = {"zybo-z7": ["zybo-z7-mainline.dts"], "pynq-z2": ["pynq-z2-v2.7.dts", "pynq-z2-uio-amba.dts"]}


def _tools():
    for tool in ("dtc", "fdtoverlay"):
        if shutil.which(tool) is None:
            if os.environ.get("GEN_REQUIRE_KERNEL"):
                pytest.fail(f"GEN_REQUIRE_KERNEL is set but {tool} is not installed")
            pytest.skip(f"{tool} not installed (apt-get install device-tree-compiler)")


def _dtc(*args):
    r = subprocess.run(["dtc", "-q", *map(str, args)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def nodes(dts: str) -> dict[str, dict[str, str]]:
    """Decompiled dts -> {node path: {property: raw value}}."""
    out, path = {}, []
    for line in dts.splitlines():
        line = line.strip()
        if line.endswith("{"):
            name = line[:-1].strip().split(":")[-1].strip()
            path.append("" if name == "/" else name)
            out["/".join(path)] = {}
        elif line == "};":
            path.pop()
        elif "=" in line and path:
            k, v = line.rstrip(";").split("=", 1)
            out["/".join(path)][k.strip()] = v.strip()
    return out


def gic_claims(tree: dict) -> dict[tuple[int, int], list[str]]:
    """(type, number) -> the enabled nodes whose interrupts name it. The AXI DMA's channel nodes repeat their
    controller's interrupts for xilinx_dma (which requests them once, per channel): counted with the controller."""
    claims = {}
    for path, props in tree.items():
        if "interrupts" not in props or props.get("status", '"okay"') not in ('"okay"', '"ok"'):
            continue
        if "axi-dma-mm2s-channel" in props.get("compatible", "") or "axi-dma-s2mm-channel" in props.get(
                "compatible", ""):
            continue
        cells = [int(c, 16) for c in re.findall(r"0x[0-9a-f]+", props["interrupts"])]
        for i in range(0, len(cells), 3):
            claims.setdefault((cells[i], cells[i + 1]), []).append(path)
    return claims


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("merge")
    return tmp, make_design(tmp, "conv")[1]


@pytest.mark.parametrize("board, image", [(b, i) for b, imgs in IMAGES.items() for i in imgs])
def test_overlay_on_board_image(designs, tmp_path, board, image):
    _tools()
    tmp, design = designs
    fw = write_firmware(tmp_path, design, load_board(board))
    base = tmp_path / "base.dtb"
    _dtc("-@", "-I", "dts", "-O", "dtb", "-o", base, DT / image)
    dtbo = tmp_path / "o.dtbo"
    _dtc("-@", "-I", "dts", "-O", "dtb", "-o", dtbo, next((fw / "overlay").glob("*.dtso")))
    merged = tmp_path / "merged.dtb"
    r = subprocess.run(["fdtoverlay", "-i", str(base), "-o", str(merged), str(dtbo)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr           # every label the overlay uses exists in the image's tree
    tree = nodes(_dtc("-I", "dtb", "-O", "dts", merged))

    accel = next(p for p, v in tree.items() if "accelerator@" in p)
    dma = next(p for p, v in tree.items() if re.search(r"/dma@[0-9a-f]+$", p))
    assert accel.startswith("/axi/") and dma.startswith("/axi/")      # under the image's amba bus
    assert tree["/fpga-full"]["firmware-name"].endswith('.bit.bin"')

    # no GIC interrupt claimed twice, the accelerator's and the DMA's included
    claims = gic_claims(tree)
    twice = {k: v for k, v in claims.items() if len(v) > 1}
    assert not twice, twice
    ours = {k for k, v in claims.items() if accel in v or dma in v}
    assert len(ours) == 3

    # FCLK0 (clkc 15) set to the design clock on both nodes, and that is the rate the PL is built for
    clkc = tree["/axi/slcr@f8000000/clkc@100"]["phandle"].strip("<>")
    hz = fclk0(design_clock_mhz(design, load_board(board))).hz
    for node in (accel, dma):
        assert tree[node]["assigned-clocks"] == f"<{clkc} 0x{FCLK0_DT_CLOCK:02x}>", node
        assert tree[node]["assigned-clock-rates"] == f"<0x{hz:x}>", node
    assert abs(hz / 1000 - design_clock_mhz(design, load_board(board)) * 1000) < 1


def test_fixture_claims_are_real(tmp_path):
    """The PYNQ fixtures carry the generic-uio claim the generated interrupts must avoid (a fixture without it
    would let a colliding overlay pass)."""
    _tools()
    for image, gic in (("pynq-z2-v2.7.dts", 29), ("pynq-z2-uio-amba.dts", 44)):
        base = tmp_path / f"{image}.dtb"
        _dtc("-@", "-I", "dts", "-O", "dtb", "-o", base, DT / image)
        claims = gic_claims(nodes(_dtc("-I", "dtb", "-O", "dts", base)))
        assert any("fabric@40000000" in p for p in claims[(0, gic)])


def test_readme_deploy_keeps_the_bitstream():
    """README "Deploy to the board" step 4: the commands must leave NAME.bit.bin in /lib/firmware (the overlay's
    firmware-name loads it whenever the overlay is applied): fpgautil -b ... -o ... deletes it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    step4 = readme[readme.index("4. **On the board**"):readme.index("5. **Server**")]
    commands = [line.split("#")[0].strip() for line in step4.splitlines() if line.startswith("       ")]
    commands = [c for c in commands if c]
    assert not [c for c in commands if c.startswith("fpgautil")], commands
    assert any(c.startswith("cp ") and "NAME.bit.bin" in c and "/lib/firmware" in c for c in commands)
    assert any("device-tree/overlays/NAME/path" in c for c in commands)
    assert not [c for c in commands if c.startswith("rm ")]
