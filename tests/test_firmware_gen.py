"""What write_firmware generates comes from regmap.py / protocol.py / the golden model, not from second copies."""

import numpy as np
import pytest

from gen.boards import load_board
from gen.firmware import make_spec, protocol, write_firmware
from gen.golden.model import encode_input, from_ir_layout
from gen.shell import regmap

from .test_firmware_e2e import make_design


@pytest.fixture(scope="module", params=["conv", "argmax"])
def generated(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    _, design = make_design(tmp, request.param)
    return design, write_firmware(tmp, design, load_board("pynq-z2"))


def test_headers_are_regmap_and_protocol(generated):
    design, fw = generated
    spec = make_spec(design, load_board("pynq-z2"))
    regs = (fw / "include" / "accel_regs.h").read_text()
    assert regs == regmap.c_header("ACCEL", spec.constants()) == (fw / "kernel" / "accel_regs.h").read_text()
    assert (fw / "include" / "accel_proto.h").read_text() == protocol.c_header()
    assert f"#define ACCEL_IN_FRAME_BYTES {spec.in_frame_bytes}" in regs
    assert f"#define ACCEL_NUM_SCORES {design.tensors[design.scores].elements}" in regs
    assert spec.in_frame_padded % 8 == 0 and spec.in_frame_padded - spec.in_frame_bytes < 8
    assert regmap.markdown_table() in (fw / "README.md").read_text()
    assert protocol.markdown() == (fw / "host" / "PROTOCOL.md").read_text()
    d = (fw / "include" / "accel_design.h").read_text()
    assert f'#define ACCEL_DEV_PATH "/dev/{spec.name}"' in d and spec.compatible in d
    assert f'compatible = "{spec.compatible}"' in next((fw / "overlay").glob("*.dtso")).read_text()
    # argmax designs carry a class; a conv feature map has none
    assert spec.has_class == (design.output != design.scores or design.tensors[design.scores].shape[:2] == (1, 1))


def test_client_quantiser_is_the_golden_quantiser(generated):
    """The host client's thresholds (accel_proto DESIGN["input"], gen/firmware/inputs.py) encode images as the
    golden model does (more: tests/test_client_e2e.py)."""
    from .test_firmware_e2e import load_generated

    design, fw = generated
    (client,) = load_generated(fw, "accel_client")
    h, w, c = design.tensors[design.input].shape
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, h, w, c))
    x = from_ir_layout(img.astype(np.float32) / np.float32(255), design.layers[0].graph_layout)
    for k in range(2):
        expect = regmap.pack_input(encode_input(design, x)[k], dma_bits=8)
        assert client.encode(client.to_frame_order(x[k])) == expect


def test_readme_register_table_is_current():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "## Deploy to the board" in readme
    assert regmap.markdown_table() in readme, "README register table is stale: paste regmap.markdown_table()"


def test_cli_writes_vivado_and_firmware(tmp_path):
    import subprocess
    import sys

    import onnx

    from tests.modelgen import qonnx_model

    gm = qonnx_model("conv", np.random.default_rng(0))
    onnx.save(gm.model, tmp_path / "m.onnx")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "gen", str(tmp_path / "m.onnx"), "--board", "zybo-z7", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "vivado" / "build.tcl").exists() and (out / "vivado" / "Makefile").exists()
    fw = out / "firmware"
    for p in ("kernel/accel_drv.c", "kernel/Kbuild", "include/accel_regs.h", "libaccel/libaccel.c", "Makefile",
              "server/accel_server.c", "host/accel_client.py", "host/accel_proto.py", "overlay/m.dtso"):
        assert (fw / p).exists(), p
    # the driver expects the DESIGN_HASH the emitted control block returns
    h = int((fw / "include" / "accel_regs.h").read_text().split("#define ACCEL_DESIGN_HASH ")[1].split()[0])
    assert f"32'h{h:08x}" in (out / "rtl" / "accel_ctrl.sv").read_text().lower()
