"""The seed system on loopback: host client -> TCP -> accel_server (C) -> libaccel (C) -> simulated device
(gen.firmware.simdev, golden model) and back. Framing, errors and timeouts for real: real sockets, real
processes, the generated sources compiled with -Wall -Werror."""

import importlib
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
import pytest

from gen.boards import load_board
from gen.firmware import protocol, write_firmware
from gen.firmware.simdev import GoldenBackend, SimDeviceServer
from gen.frontend import load_design
from gen.golden.model import encode_input, infer, run
from gen.shell import regmap

CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CC is None or shutil.which("make") is None, reason="needs a C compiler and make")
HDR = protocol.NET_HEADER
MSG = {m.name: m.code for m in protocol.NET_MESSAGES}
ERR = {e.name: e.code for e in protocol.ERRORS}


def make_design(tmp, kind="gemm", seed=0):
    from tests.modelgen import qonnx_model

    gm = qonnx_model(kind, np.random.default_rng(seed))
    path = tmp / f"{kind}{seed}.onnx"
    onnx.save(gm.model, path)
    return gm, load_design(path)[1]


def load_generated(fw, *names):
    """Import the generated Python modules of this firmware folder (fresh: other tests may have others)."""
    for n in ("accel_proto", "accel_client", "accel", "g85grid"):
        sys.modules.pop(n, None)
    sys.path[:0] = [str(fw / "host"), str(fw / "libaccel")]
    try:
        return [importlib.import_module(n) for n in names]
    finally:
        del sys.path[:2]


class Sys:
    """One generated firmware folder, built, with a simulated device and a running server."""

    def __init__(self, tmp, design, *, runtime_weights=None, server_args=()):
        self.tmp, self.design = tmp, design
        self.board = load_board("zybo-z7")
        self.fw = write_firmware(tmp, design, self.board, runtime_weights=runtime_weights)
        r = subprocess.run(["make", "-C", str(self.fw), f"CC={CC}"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "warning" not in (r.stdout + r.stderr).lower()
        self.backend = GoldenBackend(design, self.board, runtime_weights=runtime_weights)
        self.sock_path = tmp / "dev.sock"
        self.simdev = SimDeviceServer(self.sock_path, self.backend).start()
        self.server = None
        self.start_server(*server_args)

    def start_server(self, *args):
        self.server = subprocess.Popen([str(self.fw / "accel_server"), "-d", f"unix:{self.sock_path}", "-b",
                                        "127.0.0.1", "-p", "0", "-t", "300", "-r", "400", *args],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.server.stdout.readline()
        assert "listening on" in line, line + self.server.stderr.read()
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=5)
        self.simdev.stop()

    def stderr(self):
        self.stop()
        return self.server.stderr.read()


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    gm, design = make_design(tmp)
    s = Sys(tmp, design)
    s.gm = gm
    yield s
    s.stop()


def conn(s):
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    return c


def send(c, mtype, payload=b"", magic=protocol.NET_MAGIC, length=None):
    c.sendall(HDR.pack(magic, protocol.NET_VERSION, mtype, 0, len(payload) if length is None else length) + payload)


def recv(c):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = c.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    magic, version, mtype, status, length = HDR.unpack(exact(HDR.size))
    assert magic == protocol.NET_MAGIC and version == protocol.NET_VERSION
    return mtype, status, exact(length)


def frames_for(s, n, seed=0):
    x = s.gm.sample(n, np.random.default_rng(seed))
    codes = encode_input(s.design, x)
    return [regmap.pack_input(c, dma_bits=8) for c in codes], infer(s.design, x)


def parse_results(body, num_scores, num_classes=None):
    """INFER_RESULT -> [(class, seq, flags, scores)] (+ the ranks 2.. of a top-k head, when num_classes > 1)."""
    n, k, ncls = protocol.RESULT_HEAD.unpack_from(body)
    assert k == num_scores and (num_classes is None or ncls == num_classes)
    more = max(ncls, 1) - 1
    out, off = [], protocol.RESULT_HEAD.size
    for _ in range(n):
        label, seq, flags = protocol.RESULT_REC.unpack_from(body, off)
        off += protocol.RESULT_REC.size
        ranks = struct.unpack_from(f"<{more}i", body, off)
        off += 4 * more
        out.append((label, seq, flags, struct.unpack_from(f"<{k}i", body, off)) + ((ranks,) if more else ()))
        off += 4 * k
    return out


def assert_ok_infer(s, c, seed=0, n=3):
    frames, ref = frames_for(s, n, seed)
    send(c, MSG["INFER"], b"".join(frames))
    mtype, status, body = recv(c)
    assert (mtype, status) == (MSG["INFER_RESULT"], 0), body
    res = parse_results(body, s.backend.spec.num_scores)
    assert [r[3] for r in res] == [tuple(v) for v in ref["codes"].reshape(n, -1).tolist()]
    assert [r[0] for r in res] == np.argmax(ref["codes"].reshape(n, -1), axis=1).tolist()
    return res


def test_infer_batch_exact(system):
    with conn(system) as c:
        res = assert_ok_infer(system, c, seed=1, n=5)
        assert all(r[2] == 0 for r in res)
        seqs = [r[1] for r in res]
        assert seqs == list(range(seqs[0], seqs[0] + 5))


def test_info_and_status(system):
    with conn(system) as c:
        send(c, MSG["INFO"])
        mtype, _, body = recv(c)
        info = dict(zip(protocol.INFO_FIELDS, struct.unpack(f"<{len(protocol.INFO_FIELDS)}I", body)))
        spec = system.backend.spec
        assert info["design_hash"] == spec.design_hash and info["in_frame_bytes"] == spec.in_frame_bytes
        assert (info["in_height"], info["in_width"], info["in_channels"]) == spec.in_shape
        send(c, MSG["STATUS"])
        mtype, status, body = recv(c)
        names = protocol.STATUS_REGS + protocol.SERVER_COUNTERS
        st = dict(zip(names, struct.unpack(f"<{len(names)}I", body)))
        assert st["ID"] == regmap.ID_MAGIC and st["DESIGN_HASH"] == spec.design_hash
        assert st["FRAMES_IN"] == st["FRAMES_OUT"] == system.backend.frames_out
        assert st["clients"] >= 1 and st["requests"] >= 2


def test_concurrent_clients(system):
    errors = []

    def worker(i):
        try:
            with conn(system) as c:
                for j in range(6):
                    assert_ok_infer(system, c, seed=100 * i + j, n=2)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors


@pytest.mark.parametrize("case", ["short", "long", "empty", "partial_batch"])
def test_wrong_frame_size_keeps_connection(system, case):
    n = system.backend.spec.in_frame_bytes
    payload = {"short": bytes(n - 1), "long": bytes(n + 1), "empty": b"", "partial_batch": bytes(2 * n + 3)}[case]
    with conn(system) as c:
        send(c, MSG["INFER"], payload)
        mtype, status, body = recv(c)
        assert (mtype, status) == (MSG["ERROR"], ERR["BAD_LENGTH"])
        assert b"INFER" in body and str(n).encode() in body
        assert_ok_infer(system, c)        # same connection, still in step


def test_unknown_type_and_bad_lengths_keep_connection(system):
    with conn(system) as c:
        send(c, 0x55, b"abc")
        mtype, status, body = recv(c)
        assert (mtype, status) == (MSG["ERROR"], ERR["UNKNOWN_TYPE"]) and b"0x55" in body
        send(c, MSG["STATUS"], b"x")
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_LENGTH"])
        send(c, MSG["CONFIG"], bytes(7))
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_LENGTH"])
        assert_ok_infer(system, c)


def test_bad_magic_and_too_large_close(system):
    with conn(system) as c:
        send(c, MSG["INFER"], b"", magic=0x12345678)
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_MAGIC"])
        assert c.recv(1) == b""
    with conn(system) as c:
        send(c, MSG["INFER"], b"", length=protocol.NET_MAX_PAYLOAD + 1)
        assert recv(c)[:2] == (MSG["ERROR"], ERR["TOO_LARGE"])
        assert c.recv(1) == b""


def test_truncated_message_times_out_others_served(system):
    n = system.backend.spec.in_frame_bytes
    with conn(system) as slow, conn(system) as other:
        send(slow, MSG["INFER"], bytes(min(n, 4)), length=n)    # promises n bytes, sends fewer
        assert_ok_infer(system, other)                           # not blocked by the slow one
        t0 = time.monotonic()
        mtype, status, body = recv(slow)
        assert (mtype, status) == (MSG["ERROR"], ERR["TRUNCATED"]) and b"incomplete" in body
        assert time.monotonic() - t0 < 3
        assert slow.recv(1) == b""


def test_client_gone_mid_frame(system):
    n = system.backend.spec.in_frame_bytes
    with conn(system) as c:
        send(c, MSG["STATUS"])
        errors_before = dict(zip(protocol.STATUS_REGS + protocol.SERVER_COUNTERS,
                                 struct.unpack(f"<{len(protocol.STATUS_REGS) + 3}I", recv(c)[2])))["errors"]
    gone = conn(system)
    send(gone, MSG["INFER"], bytes(n // 2 + 1), length=n)
    gone.close()
    time.sleep(0.2)
    with conn(system) as c:
        assert_ok_infer(system, c)
        send(c, MSG["STATUS"])
        st = dict(zip(protocol.STATUS_REGS + protocol.SERVER_COUNTERS,
                      struct.unpack(f"<{len(protocol.STATUS_REGS) + 3}I", recv(c)[2])))
        assert st["errors"] == errors_before + 1


def test_device_timeout_then_recovers(system):
    frames, _ = frames_for(system, 1, seed=7)
    with conn(system) as c:
        system.backend.swallow = 1           # the next frame never comes back
        t0 = time.monotonic()
        send(c, MSG["INFER"], frames[0])
        mtype, status, body = recv(c)
        assert (mtype, status) == (MSG["ERROR"], ERR["TIMEOUT"]) and b"timeout" in body
        assert 0.25 < time.monotonic() - t0 < 3
        assert system.backend.frames_out == 0   # libaccel reset the device after the timeout (as the driver)
        assert_ok_infer(system, c)             # and the next frame is fine


def test_config_without_runtime_weights(system):
    rec = protocol.CFG_RECORD.pack(0, 0, *range(regmap.CFG_DATA_WORDS))
    with conn(system) as c:
        send(c, MSG["CONFIG"], rec)
        assert recv(c)[:2] == (MSG["ERROR"], ERR["NO_WEIGHTS"])
        assert_ok_infer(system, c)


def test_host_client_cli(system, tmp_path):
    """The generated host client under the default input contract (`tensor`: the files hold the model's float
    input as is): .npy with and without batch and .npz -> CSV with the golden model's classes and scores. Other
    kinds (wafer maps, images): tests/test_client_e2e.py."""
    from PIL import Image

    x = system.gm.sample(5, np.random.default_rng(3))
    np.save(tmp_path / "w.npy", x)
    np.save(tmp_path / "one.npy", x[4])
    np.savez(tmp_path / "w.npz", a=x[:2], b=x[2:4])
    out = tmp_path / "r.csv"
    paths = [tmp_path / "w.npy", tmp_path / "one.npy", tmp_path / "w.npz"]
    r = subprocess.run([sys.executable, str(system.fw / "host" / "accel_client.py"), "--port", str(system.port),
                        "--csv", str(out), *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("input,class,seq,flags,score0") and len(lines) == 11
    ref = infer(system.design, np.concatenate([x, x[4:], x[:4]]))["codes"].reshape(10, -1)
    names = [f"w.npy#{i}" for i in range(5)] + ["one.npy", "w.npz#a#0", "w.npz#a#1", "w.npz#b#0", "w.npz#b#1"]
    for name, want, line in zip(names, ref, lines[1:]):
        fields = line.split(",")
        assert fields[0] == name and int(fields[1]) == int(np.argmax(want))
        assert [int(v) for v in fields[4:]] == want.tolist()
    # status, errors: a picture means nothing to a `tensor` design, a bad file is exit 2, no server exit 1
    r = subprocess.run([sys.executable, str(system.fw / "host" / "accel_client.py"), "--port", str(system.port),
                        "--status"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "DESIGN_HASH" in r.stdout
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "w.png")
    (tmp_path / "bad.npy").write_bytes(b"nope")
    np.save(tmp_path / "shape.npy", x[:, :, None])
    for name, what in (("w.png", "input kind is `tensor`"), ("bad.npy", "bad.npy"), ("shape.npy", "shape")):
        r = subprocess.run([sys.executable, str(system.fw / "host" / "accel_client.py"), "--port",
                            str(system.port), str(tmp_path / name)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.startswith("error:") and what in r.stderr, r.stderr
    r = subprocess.run([sys.executable, str(system.fw / "host" / "accel_client.py"), "--port", "1",
                        str(tmp_path / "w.npy")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_ctypes_wrapper(system):
    (accel,) = load_generated(system.fw, "accel")
    frames, ref = frames_for(system, 3, seed=11)
    with accel.Accel(f"unix:{system.sock_path}", timeout_ms=500) as acc:
        r = acc.infer(frames[0])
        assert r.scores == tuple(ref["codes"][0].reshape(-1).tolist()) and r.flags == 0
        assert [x.scores for x in acc.infer_batch(frames)] == [tuple(v) for v in ref["codes"].reshape(3, -1).tolist()]
        st = acc.status()
        assert st["ID"] == regmap.ID_MAGIC and st["NUM_SCORES"] == system.backend.spec.num_scores
        with pytest.raises(accel.AccelError, match="FRAME_SIZE"):
            acc.infer(frames[0][:-1])
        with pytest.raises(accel.AccelError, match="ARG"):
            acc.read_reg(0x3)
        with pytest.raises(accel.AccelError, match="NO_WEIGHTS"):
            acc.write_weight(0, 0, [1, 2])
        system.backend.swallow = 1
        with pytest.raises(accel.AccelError, match="TIMEOUT"):
            acc.infer(frames[0])
        assert acc.infer(frames[1]).scores == tuple(ref["codes"][1].reshape(-1).tolist())
    with pytest.raises(accel.AccelError, match="OPEN"):
        accel.Accel(f"unix:{system.tmp / 'nothing.sock'}")


def test_topk_classes_through_the_server(tmp_path):
    """A TopK k = 4 head: libaccel reads the 4 classes from the frame, the C server sends them (INFER_RESULT
    num_classes), the host client and the ctypes wrapper return them - the golden model's top 4, largest first."""
    from gen.sim.accel import random_codes
    from tests.modelgen.bipolar_out import bipolar_out_model

    gm = bipolar_out_model("qonnx", "coded_head", np.random.default_rng(102))
    onnx.save(gm.model, tmp_path / "m.onnx")
    design = load_design(tmp_path / "m.onnx")[1]
    s = Sys(tmp_path, design)
    try:
        spec = s.backend.spec
        assert spec.num_classes == 4
        codes = random_codes(design, 6, np.random.default_rng(4))
        env = run(design, None, feeds={design.input: codes})
        top = [tuple(int(v) for v in row) for row in env[design.output].reshape(6, -1)]
        scores = [tuple(int(v) for v in row) for row in env[design.scores].reshape(6, -1)]
        frames = [regmap.pack_input(c)[:spec.in_frame_bytes] for c in codes]
        c = conn(s)
        send(c, MSG["INFER"], b"".join(frames))
        mtype, status, body = recv(c)
        assert (mtype, status) == (MSG["INFER_RESULT"], 0), body
        res = parse_results(body, spec.num_scores, 4)
        assert [(r[0],) + r[4] for r in res] == top and [r[3] for r in res] == scores
        (client, accel) = load_generated(s.fw, "accel_client", "accel")
        with client.Client("127.0.0.1", s.port, 5) as cl:
            assert [tuple(r["classes"]) for r in cl.infer(frames)] == top
        with accel.Accel(f"unix:{s.sock_path}", timeout_ms=500) as acc:
            assert [r.classes for r in acc.infer_batch(frames)] == top
            assert acc.status()["NUM_CLASSES"] == 4
    finally:
        s.stop()


def test_runtime_weights_and_mismatch(tmp_path):
    _, design = make_design(tmp_path, "gemm", seed=0)
    s = Sys(tmp_path, design, runtime_weights=True, server_args=("-c", "2"))
    try:
        good = protocol.CFG_RECORD.pack(0, 5, *range(1, regmap.CFG_DATA_WORDS + 1))
        bad = protocol.CFG_RECORD.pack(9, 0, *([0] * regmap.CFG_DATA_WORDS))
        with conn(s) as c:
            send(c, MSG["CONFIG"], good + good)
            mtype, status, body = recv(c)
            assert (mtype, status, body) == (MSG["CONFIG_RESULT"], 0, struct.pack("<I", 2))
            assert s.backend.cfg_log[0] == (0, 5, tuple(range(1, regmap.CFG_DATA_WORDS + 1)))
            send(c, MSG["CONFIG"], good + bad)
            mtype, status, body = recv(c)
            assert (mtype, status) == (MSG["ERROR"], ERR["CFG"]) and b"record 1 of 2 (layer 9" in body
            assert s.backend.errors == 0          # the CFG_ERROR flag was acknowledged
            # -c 2: a third client is turned away, the first two keep working
            with conn(s) as c2:
                send(c2, MSG["STATUS"])
                recv(c2)
                with conn(s) as c3:
                    mtype, status, body = recv(c3)
                    assert (mtype, status) == (MSG["ERROR"], ERR["BUSY"])
                send(c2, MSG["STATUS"])
                assert recv(c2)[0] == MSG["STATUS_RESULT"]
    finally:
        s.stop()
    # a server whose device is another design refuses to start
    _, other = make_design(tmp_path, "matmul", seed=1)
    sim2 = SimDeviceServer(tmp_path / "other.sock", GoldenBackend(other, s.board)).start()
    try:
        r = subprocess.run([str(s.fw / "accel_server"), "-d", f"unix:{tmp_path / 'other.sock'}", "-p", "0"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and "is not this design" in r.stderr
    finally:
        sim2.stop()
