"""The server fault suite: accel_server (C) + libaccel (C) against a simulated device in its own process, under
faults - the device killed and restarted (and a char device removed and back, through a preloaded stand-in
for the driver), idle and slow clients, the client limit, malformed messages, input bytes outside the
design's code range, a log flood, bad command-line options, accept errors.

Every test runs twice: against the normal build and against `make asan` (AddressSanitizer + UBSan, any
error aborts the server); each server is stopped with SIGTERM, must exit 0 and its log must hold no sanitizer
report (leaks included). One generated design and one simulated device process serve the whole module."""

import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from gen.boards import load_board
from gen.firmware import protocol, write_firmware
from gen.firmware.spec import make_spec
from gen.golden.model import run
from gen.shell import regmap
from tests.test_firmware_e2e import CC, ERR, HDR, MSG, make_design, parse_results, recv, send

pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler and make")
SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")


def _sanitizer_runtime_ok(tmp) -> bool:
    """Whether this compiler links and runs -fsanitize=address,undefined (libasan / libubsan installed)."""
    src = tmp / "san.c"
    src.write_text("#include <stdlib.h>\nint main(void) { free(malloc(1)); return 0; }\n")
    r = subprocess.run([CC, "-fsanitize=address,undefined", "-o", str(tmp / "san"), str(src)], capture_output=True)
    return r.returncode == 0 and subprocess.run([str(tmp / "san")], capture_output=True).returncode == 0


class Device:
    """`python -m gen.firmware.simdev` in its own process, so that it can be killed like a real one."""

    def __init__(self, design_json, sock):
        self.design_json, self.sock, self.proc = design_json, sock, None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gen.firmware.simdev", str(self.design_json),
                                      "--socket", str(self.sock)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        assert "simdev:" in line, line + self.proc.stderr.read()

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    gm, design = make_design(tmp)
    design.save(tmp / "design.json")
    board = load_board("zybo-z7")
    fw = write_firmware(tmp, design, board)
    r = subprocess.run(["make", "-C", str(fw), f"CC={CC}", "all"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    asan = None
    if _sanitizer_runtime_ok(tmp):
        r = subprocess.run(["make", "-C", str(fw), f"CC={CC}", "asan"], capture_output=True, text=True, timeout=180)
        assert r.returncode == 0 and "warning" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
        assert "-fsanitize=address,undefined" in r.stdout
        asan = fw / "asan" / "accel_server"
        assert b"__asan_init" in asan.read_bytes() and b"__ubsan_handle" in asan.read_bytes()
    dev = Device(tmp / "design.json", tmp / "dev.sock")
    dev.start()
    yield dict(tmp=tmp, gm=gm, design=design, fw=fw, asan=asan, dev=dev,
               spec=make_spec(design, board))
    dev.kill()


class Server:
    def __init__(self, exe, device, log, args, env=None, **popen):
        self.log = log
        env = {**os.environ, "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1", "UBSAN_OPTIONS": "halt_on_error=1",
               **(env or {})}
        with open(log, "w") as err:   # a file, not a pipe: a flood of log lines cannot block the server
            self.proc = subprocess.Popen([str(exe), "-d", device, "-b", "127.0.0.1", "-p", "0", *args],
                                         stdout=subprocess.PIPE, stderr=err, text=True, env=env, **popen)
        line = self.proc.stdout.readline()
        assert "listening on" in line, line + self.stderr()
        self.port = int(line.rsplit(":", 1)[1])

    def conn(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def stderr(self):
        return self.log.read_text()

    def stop(self):
        """SIGTERM: the server leaves main() normally, so the sanitizers' exit checks (leaks) run too."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        err = self.stderr()
        assert not SANITIZER_REPORT.search(err), err
        assert self.proc.returncode == 0, err


@pytest.fixture(params=["plain", "asan"])
def start(request, built, tmp_path):
    """start(*options) -> a running Server of the normal or the sanitizer build; stopped and checked after."""
    exe = built["fw"] / "accel_server"
    if request.param == "asan":
        if built["asan"] is None:
            pytest.skip(f"{CC} cannot link -fsanitize=address,undefined (libasan / libubsan missing)")
        exe = built["asan"]
    servers = []

    def start_server(*args, device=None, **popen):
        s = Server(exe, device or f"unix:{built['dev'].sock}", tmp_path / f"server{len(servers)}.log", args,
                   **popen)
        servers.append(s)
        return s

    start_server.exe = exe
    yield start_server
    for s in servers:
        s.stop()


def frame_codes(built, seed, n):
    """n valid input frames (random codes over the whole input range) and the golden model's scores."""
    spec, d = built["spec"], built["design"]
    codes = np.random.default_rng(seed).integers(spec.in_lo, spec.in_hi + 1, (n,) + spec.in_shape)
    frames = [regmap.pack_input(c, bipolar=spec.in_bipolar, dma_bits=8) for c in codes]
    scores = [tuple(run(d, None, feeds={d.input: c[None]})[d.scores].reshape(-1).tolist()) for c in codes]
    return frames, scores


def assert_infer_ok(built, c, seed=0, n=2):
    frames, scores = frame_codes(built, seed, n)
    send(c, MSG["INFER"], b"".join(frames))
    mtype, status, body = recv(c)
    assert (mtype, status) == (MSG["INFER_RESULT"], 0), body
    assert [r[3] for r in parse_results(body, built["spec"].num_scores)] == scores


def served_conn(srv, rcvbuf=None, within=2.0):
    """A connection the server has taken into a slot (an INFO answered): a client that closed a moment ago
    may still hold its slot until the server's thread notices, so a BUSY is retried for `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        c = socket.socket()
        if rcvbuf:
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        c.settimeout(5)
        c.connect(("127.0.0.1", srv.port))
        send(c, MSG["INFO"])
        mtype, status, _ = recv(c)
        if mtype == MSG["INFO_RESULT"]:
            return c
        c.close()
        assert status == ERR["BUSY"] and time.monotonic() < deadline
        time.sleep(0.02)


def closed_by_server(c, within):
    """The server closes c (EOF, or a reset for unread data) within `within` seconds."""
    c.settimeout(within)
    try:
        while c.recv(4096):
            pass
    except ConnectionResetError:
        pass
    return True


# ---- the device goes away and comes back ---------------------------------------------------------------------

def wait_until_served(c, limit_s: float = 3.0) -> None:
    """STATUS until the device answers again: UNAVAILABLE meanwhile, served within limit_s (libaccel's back-off
    is at most 1 s between reopen attempts)."""
    t0 = time.monotonic()
    while True:
        send(c, MSG["STATUS"])
        mtype, status, body = recv(c)
        if mtype == MSG["STATUS_RESULT"]:
            return
        assert status == ERR["UNAVAILABLE"] and time.monotonic() - t0 < limit_s, body
        time.sleep(0.05)


def test_device_killed_and_restarted(built, start):
    """Service resumes without restarting the server; meanwhile requests get UNAVAILABLE (connection kept)."""
    srv = start("-t", "300")
    dev = built["dev"]
    with srv.conn() as c:
        assert_infer_ok(built, c, seed=1)
        dev.kill()
        try:
            for _ in range(3):          # the request that finds it gone, and those while it stays gone
                send(c, MSG["INFER"], frame_codes(built, 2, 1)[0][0])
                mtype, status, body = recv(c)
                assert (mtype, status) == (MSG["ERROR"], ERR["UNAVAILABLE"]), body
                assert b"device unavailable" in body
                send(c, MSG["STATUS"])
                assert recv(c)[:2] == (MSG["ERROR"], ERR["UNAVAILABLE"])
            send(c, MSG["INFO"])                             # needs no device: still answered
            assert recv(c)[:2] == (MSG["INFO_RESULT"], 0)
        finally:
            dev.start()
        wait_until_served(c)
        assert_infer_ok(built, c, seed=3, n=3)
    with srv.conn() as c2:
        assert_infer_ok(built, c2, seed=4)
    log = srv.stderr()
    assert log.count("reopening it with back-off") == 1 and log.count("is back: serving again") == 1, log


# ---- clients that hold a slot for nothing --------------------------------------------------------------------

def test_idle_connections_do_not_lock_out(built, start):
    srv = start("-c", "16", "-i", "300")
    idle = [srv.conn() for _ in range(16)]
    try:
        with srv.conn() as extra:                            # the 17th: turned away while the 16 are fresh
            assert recv(extra)[:2] == (MSG["ERROR"], ERR["BUSY"])
        t0 = time.monotonic()
        for c in idle:
            assert closed_by_server(c, within=2)
        assert time.monotonic() - t0 < 1.5
        with srv.conn() as c:                                # a real client is served again
            assert_infer_ok(built, c, seed=5)
    finally:
        for c in idle:
            c.close()
    assert srv.stderr().count("idle for 300 ms: closing") == 16


def test_slowloris(built, start):
    """Slow clients both ways hold the one slot (-c 1) for no longer than the message timeout (-r).
    Writer: one byte every 100 ms - the timeout counts from the first byte, progress does not extend it.
    Reader: sends requests and never reads the replies - once its receive buffer is full the server cannot
    hand over a reply within the timeout and closes the connection instead of blocking in send() for ever."""
    srv = start("-c", "1", "-r", "400")
    msg = HDR.pack(protocol.NET_MAGIC, protocol.NET_VERSION, MSG["INFER"], 0, built["spec"].in_frame_bytes)
    with srv.conn() as slow:
        slow.settimeout(0.1)
        t0 = time.monotonic()
        reply = b""
        for b in msg:
            try:
                slow.sendall(bytes([b]))
                reply += slow.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if reply:
                break
        took = time.monotonic() - t0
        assert reply, "the server waited for the whole dribbled message"
        assert 0.35 < took < 1.0
        assert HDR.unpack_from(reply)[2:4] == (MSG["ERROR"], ERR["TRUNCATED"])
        assert closed_by_server(slow, within=1)
    with served_conn(srv) as c:                              # -c 1: the slot is free again
        assert_infer_ok(built, c, seed=6)

    info = HDR.pack(protocol.NET_MAGIC, protocol.NET_VERSION, MSG["INFO"], 0, 0)
    slow = served_conn(srv, rcvbuf=4096)
    done = threading.Event()

    def flood():
        try:
            while True:
                slow.sendall(info * 1024)
        except OSError:
            done.set()

    threading.Thread(target=flood, daemon=True).start()
    try:
        assert done.wait(20), "the server kept the connection of a client that does not read"
        assert "reply not taken within 400 ms" in srv.stderr()
    finally:
        slow.close()
    with served_conn(srv) as c:                              # -c 1: the slot is free again
        assert_infer_ok(built, c, seed=7)


def test_client_limit(built, start):
    """-c 2: a third client gets BUSY and is closed; of the two, the one that stays idle past -i loses its slot,
    the one that keeps sending (never -i without a request) keeps it, and a newcomer gets the free slot."""
    srv = start("-c", "2", "-i", "400")
    with srv.conn() as active, srv.conn() as idle:
        for c in (active, idle):
            send(c, MSG["INFO"])
            assert recv(c)[0] == MSG["INFO_RESULT"]
        with srv.conn() as c3:
            mtype, status, body = recv(c3)
            assert (mtype, status) == (MSG["ERROR"], ERR["BUSY"]) and b"too many clients (2)" in body
            assert closed_by_server(c3, within=1)
        for _ in range(8):                                   # 0.8 s in all, a request every 0.1 s
            time.sleep(0.1)
            send(active, MSG["INFO"])
            assert recv(active)[:2] == (MSG["INFO_RESULT"], 0)
        assert closed_by_server(idle, within=0.5)            # closed at 0.4 s already
        with srv.conn() as newcomer:
            assert_infer_ok(built, newcomer, seed=8)
            assert_infer_ok(built, active, seed=13)


# ---- malformed messages ----------------------------------------------------------------------------------------

def test_malformed_messages(built, start):
    srv = start("-r", "300")
    n = built["spec"].in_frame_bytes
    with srv.conn() as c:                                    # bad magic, bad version: answered, then closed
        send(c, MSG["INFO"], magic=0x50545448)
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_MAGIC"])
        assert closed_by_server(c, within=1)
    with srv.conn() as c:
        c.sendall(HDR.pack(protocol.NET_MAGIC, 9, MSG["INFO"], 0, 0))
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_MAGIC"])
    with srv.conn() as c:                                    # huge length: refused before any allocation
        send(c, MSG["INFER"], length=0xFFFFFFFF)
        mtype, status, body = recv(c)
        assert (mtype, status) == (MSG["ERROR"], ERR["TOO_LARGE"]) and b"4294967295" in body
        assert closed_by_server(c, within=1)
    with srv.conn() as c:                                    # truncated header: TRUNCATED after -r
        c.sendall(HDR.pack(protocol.NET_MAGIC, protocol.NET_VERSION, MSG["INFO"], 0, 0)[:5])
        t0 = time.monotonic()
        assert recv(c)[:2] == (MSG["ERROR"], ERR["TRUNCATED"])
        assert 0.25 < time.monotonic() - t0 < 1.5
    with srv.conn() as c:                                    # truncated header, then the client goes
        c.sendall(b"GEN")
    with srv.conn() as c:                                    # wrong frame sizes, unknown type: connection kept
        for payload in (bytes(n - 1), bytes(n + 1), bytes(3 * n - 2)):
            send(c, MSG["INFER"], payload)
            mtype, status, body = recv(c)
            assert (mtype, status) == (MSG["ERROR"], ERR["BAD_LENGTH"]) and f"of {n} bytes".encode() in body
        send(c, MSG["INFER"], bytes(n * (protocol.NET_MAX_BATCH + 1)))
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_LENGTH"])
        send(c, 0x7E, b"xyz")
        assert recv(c)[:2] == (MSG["ERROR"], ERR["UNKNOWN_TYPE"])
        send(c, MSG["INFER"], bytes([_bad_bytes(built["spec"])[0]]) * n)       # out-of-range input bytes
        assert recv(c)[:2] == (MSG["ERROR"], ERR["BAD_FRAME"])
        assert_infer_ok(built, c, seed=9)


def test_log_rate_limited(built, start):
    """A client sending bad messages as fast as it can: every one is answered, but the log takes at most 20
    lines a second and then says how many it dropped - nothing lost from the count, no flood on the board."""
    srv = start()
    bad = HDR.pack(protocol.NET_MAGIC, protocol.NET_VERSION, 0x7E, 0, 0)
    with srv.conn() as c:
        c.sendall(bad * 300)
        for _ in range(300):
            assert recv(c)[:2] == (MSG["ERROR"], ERR["UNKNOWN_TYPE"])
        time.sleep(1.1)                                      # a new second: the next line reports the drops
        c.sendall(bad)
        assert recv(c)[:2] == (MSG["ERROR"], ERR["UNKNOWN_TYPE"])
    log = srv.stderr()
    logged = log.count("unknown message type 0x7e")
    dropped = sum(int(n) for n in re.findall(r"\((\d+) log lines dropped: more than 20 a second\)", log))
    assert logged + dropped == 301 and logged <= 2 * 20 + 1 and dropped >= 300 - 2 * 20, log


def _bad_bytes(spec):
    """Every byte value that is not one input code of the design (the RTL would read it differently)."""
    def code(b):
        return b if not spec.in_signed else (b - 256 if b > 127 else b)
    if spec.in_bipolar:
        return [b for b in range(256) if b > 1]
    return [b for b in range(256) if not spec.in_lo <= code(b) <= spec.in_hi]


def test_out_of_range_input_bytes(built, start):
    """A byte outside the input code range: BAD_FRAME naming the first bad byte, connection kept, device
    untouched; the range's own ends are accepted and computed exactly."""
    srv = start()
    spec = built["spec"]
    bad = _bad_bytes(spec)
    assert bad and len(bad) == 256 - (spec.in_hi - spec.in_lo + 1)
    frames, scores = frame_codes(built, 10, 3)
    with srv.conn() as c:
        send(c, MSG["STATUS"])
        before = recv(c)[2]
        last = 3 * spec.in_frame_bytes - 1
        # (offsets of bad bytes, their value): the error names the first one, as frame and byte
        for offsets, value in (((0, last), bad[0]), ((spec.in_frame_bytes + 1, last), bad[1]), ((last,), bad[-1])):
            payload = bytearray(b"".join(frames))
            for off in offsets:
                payload[off] = value
            send(c, MSG["INFER"], bytes(payload))
            mtype, status, body = recv(c)
            assert (mtype, status) == (MSG["ERROR"], ERR["BAD_FRAME"]), body
            first = offsets[0]
            want = f"INFER: frame {first // spec.in_frame_bytes} byte {first % spec.in_frame_bytes} is {value} "
            assert body.decode().startswith(want), body
            assert f"{spec.in_lo}..{spec.in_hi}".encode() in body
        send(c, MSG["STATUS"])
        after = recv(c)[2]
        regs = protocol.STATUS_REGS
        assert struct.unpack_from(f"<{len(regs)}I", after) == struct.unpack_from(f"<{len(regs)}I", before)
        # the ends of the range are codes: all-lo and all-hi frames, exact scores
        d = built["design"]
        for v in (spec.in_lo, spec.in_hi):
            codes = np.full(spec.in_shape, v)
            send(c, MSG["INFER"], regmap.pack_input(codes, bipolar=spec.in_bipolar, dma_bits=8))
            mtype, status, body = recv(c)
            assert (mtype, status) == (MSG["INFER_RESULT"], 0), body
            want = tuple(run(d, None, feeds={d.input: codes[None]})[d.scores].reshape(-1).tolist())
            assert parse_results(body, spec.num_scores)[0][3] == want
        send(c, MSG["INFER"], b"".join(frames))
        mtype, status, body = recv(c)
        assert [r[3] for r in parse_results(body, spec.num_scores)] == scores


# ---- command line ---------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    (["-p", "abc"], "-p", "0..65535"), (["-p", "70000"], "-p", "0..65535"), (["-p", "-1"], "-p", "0..65535"),
    (["-p", "80x"], "-p", "0..65535"), (["-p", ""], "-p", "0..65535"), (["-p", " 80"], "-p", "0..65535"),
    (["-c", "-1"], "-c", "1..1024"), (["-c", "0"], "-c", "1..1024"), (["-c", "99999999999999999999"], "-c", "1..1024"),
    (["-t", "x"], "-t", "1..60000"), (["-t", "0"], "-t", "1..60000"), (["-t", "60001"], "-t", "1..60000"),
    (["-r", "0"], "-r", "1..600000"), (["-r", "1e3"], "-r", "1..600000"),
    (["-i", "-5"], "-i", "1..86400000"), (["-i", "abc"], "-i", "1..86400000"),
    (["-b", "999.1.1.1"], "-b", "IPv4"), (["-b", "localhost"], "-b", "IPv4"), (["-d", ""], "-d", "unix:SOCKET"),
    (["-z"], "-z", "unknown option"), (["-p"], "-p", "needs a value"), (["extra"], "extra", "unexpected argument"),
]


@pytest.mark.parametrize("args,option,allowed", BAD_OPTIONS, ids=[" ".join(a[0]) or "empty" for a in BAD_OPTIONS])
def test_bad_options(built, start, args, option, allowed):
    r = subprocess.run([str(start.exe), "-d", f"unix:{built['dev'].sock}", *args], capture_output=True, text=True,
                       timeout=5)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert option in lines[0] and allowed in lines[0]
    assert r.stdout == ""


def test_option_bounds_accepted_and_documented(built, start):
    srv = start("-t", "60000", "-r", "600000", "-i", "86400000", "-c", "1024")
    with srv.conn() as c:
        assert_infer_ok(built, c, seed=11)
    r = subprocess.run([str(start.exe), "-h"], capture_output=True, text=True, timeout=5)
    assert r.returncode == 0
    for text in ("-i MS", "idle timeout, 1..86400000", "-r MS", "message timeout, 1..600000", "1..1024",
                 "0..65535", "1..60000", "UNAVAILABLE"):
        assert text in r.stderr, text


# ---- accept errors ---------------------------------------------------------------------------------------------

def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_accept_errors_back_off(built, start):
    """Out of file descriptors: accept fails while connections wait; the server backs off (no 100% CPU, a few
    log lines, not millions) and takes the waiting ones once descriptors are free again."""
    limit = 10    # stdin/out/err, listening socket, device socket, a few clients (and the sanitizer's own)
    srv = start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    held = []
    try:
        while True:                                          # take every descriptor the server has left
            c = srv.conn()
            held.append(c)
            send(c, MSG["INFO"])
            try:
                c.settimeout(0.3)
                assert recv(c)[0] == MSG["INFO_RESULT"]
            except TimeoutError:
                break                                        # this one waits in the backlog: accept fails
            assert len(held) < limit
        waiting = held.pop()
        cpu0, t0 = _cpu_seconds(srv.proc.pid), time.monotonic()
        time.sleep(1.5)
        cpu = _cpu_seconds(srv.proc.pid) - cpu0
        assert cpu < 0.3 * (time.monotonic() - t0), f"{cpu:.2f} s of CPU while accept fails"
        log = srv.stderr()
        assert 1 <= log.count("accept: ") <= 2 and "Too many open files" in log, log[-2000:]
        for c in held:
            c.close()
        held = []
        waiting.settimeout(3)
        assert recv(waiting)[0] == MSG["INFO_RESULT"]        # served once a descriptor is free
        assert_infer_ok(built, waiting, seed=12)
        waiting.close()
    finally:
        for c in held:
            c.close()


# ---- the char device backend: the driver's file answers ENODEV once the device is removed ---------------------

# A stand-in for the kernel driver, preloaded into the server: FAKE_CDEV is the device node, FAKE_CDEV_STATE a
# file holding the device's generation. No file (or 0): the node does not exist (open: ENOENT). A file opened
# under another generation gets ENODEV from every read, write and ioctl - what accel_drv.c does for files of a
# removed device (adev->gone). Registers answer this design's identity, frames come back as zero scores.
FAKE_CDEV_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "accel_design.h"
#include "accel_uapi.h"

#define MAX_FD 4096
static int gen_of_fd[MAX_FD];	/* the generation a fake fd was opened under; 0: not ours */

static int (*real_open)(const char *, int, ...);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);

static void init(void)
{
	if (real_open)
		return;
	real_read = dlsym(RTLD_NEXT, "read");
	real_write = dlsym(RTLD_NEXT, "write");
	real_close = dlsym(RTLD_NEXT, "close");
	real_ioctl = dlsym(RTLD_NEXT, "ioctl");
	real_open = dlsym(RTLD_NEXT, "open");
}

static int generation(void)
{
	char buf[16] = "";
	int fd = real_open(getenv("FAKE_CDEV_STATE"), O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return 0;
	n = (int)real_read(fd, buf, sizeof(buf) - 1);
	real_close(fd);
	return n > 0 ? atoi(buf) : 0;
}

static int ours(int fd)
{
	return fd >= 0 && fd < MAX_FD && gen_of_fd[fd];
}

static int gone(int fd)
{
	if (gen_of_fd[fd] == generation())
		return 0;
	errno = ENODEV;
	return 1;
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	va_list ap;
	int fd, g;

	init();
	if (flags & O_CREAT) {
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	if (!getenv("FAKE_CDEV") || strcmp(path, getenv("FAKE_CDEV")))
		return real_open(path, flags, mode);
	g = generation();
	if (!g) {
		errno = ENOENT;
		return -1;
	}
	fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
	if (fd >= 0 && fd < MAX_FD)
		gen_of_fd[fd] = g;
	return fd;
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int close(int fd)
{
	init();
	if (fd >= 0 && fd < MAX_FD)
		gen_of_fd[fd] = 0;
	return real_close(fd);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	init();
	if (!ours(fd))
		return real_write(fd, buf, len);
	return gone(fd) ? -1 : (ssize_t)len;
}

ssize_t read(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	init();
	if (!ours(fd))
		return real_read(fd, buf, len);
	if (gone(fd))
		return -1;
	if (len < ACCEL_OUT_FRAME_BYTES) {
		errno = EINVAL;
		return -1;
	}
	memset(p, 0, ACCEL_OUT_FRAME_BYTES);	/* class 0, seq 0, no flags, zero scores */
	return ACCEL_OUT_FRAME_BYTES;
}

static uint32_t reg(uint32_t off)
{
	switch (off) {
	case ACCEL_REG_ID: return ACCEL_ID_MAGIC;
	case ACCEL_REG_VERSION: return ACCEL_VERSION;
	case ACCEL_REG_DESIGN_HASH: return (uint32_t)ACCEL_DESIGN_HASH;
	case ACCEL_REG_IN_FRAME_BYTES: return ACCEL_IN_FRAME_BYTES;
	case ACCEL_REG_OUT_FRAME_BYTES: return ACCEL_OUT_FRAME_BYTES;
	case ACCEL_REG_NUM_SCORES: return ACCEL_NUM_SCORES;
	case ACCEL_REG_NUM_CLASSES: return ACCEL_NUM_CLASSES;
	default: return 0;
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	init();
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!ours(fd))
		return real_ioctl(fd, req, arg);
	if (gone(fd))
		return -1;
	if (req == ACCEL_IOC_READ_REG) {
		struct accel_reg_io *io = arg;

		io->value = reg(io->offset);
		return 0;
	}
	if (req == ACCEL_IOC_SET_TIMEOUT || req == ACCEL_IOC_RESET || req == ACCEL_IOC_WRITE_REG)
		return 0;
	errno = EOPNOTSUPP;
	return -1;
}
"""


def test_chardev_removed_and_back(built, start, tmp_path):
    """/dev/NAME: the driver's file answers ENODEV after the device is removed, the node is missing for a
    while, then a new device appears - the server reports UNAVAILABLE meanwhile and serves again by itself."""
    src, lib = tmp_path / "fake_cdev.c", tmp_path / "fake_cdev.so"
    src.write_text(FAKE_CDEV_C)
    r = subprocess.run([CC, "-shared", "-fPIC", "-O1", "-Wall", "-Werror", f"-I{built['fw'] / 'include'}", "-o",
                        str(lib), str(src), "-ldl"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    node, state = tmp_path / "accel0", tmp_path / "accel0.state"
    state.write_text("1")
    # verify_asan_link_order=0: ASan wants its runtime first among the libraries, the preloaded fake driver
    # comes before it (its calls still reach ASan's interceptors through RTLD_NEXT)
    srv = start("-t", "300", device=str(node),
                env=dict(LD_PRELOAD=str(lib), FAKE_CDEV=str(node), FAKE_CDEV_STATE=str(state),
                         ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:verify_asan_link_order=0"))
    names = protocol.STATUS_REGS + protocol.SERVER_COUNTERS
    with srv.conn() as c:
        send(c, MSG["STATUS"])
        mtype, _, body = recv(c)
        assert mtype == MSG["STATUS_RESULT"]
        assert dict(zip(names, struct.unpack(f"<{len(names)}I", body)))["ID"] == regmap.ID_MAGIC
        state.unlink()                                       # removed: ENODEV on the open file, then ENOENT
        for mtype_ in ("STATUS", "INFER", "STATUS"):
            send(c, MSG[mtype_], bytes(built["spec"].in_frame_bytes) if mtype_ == "INFER" else b"")
            mtype, status, body = recv(c)
            assert (mtype, status) == (MSG["ERROR"], ERR["UNAVAILABLE"]) and b"device unavailable" in body, body
        state.write_text("2")                                # a new device at the same node
        wait_until_served(c)
        send(c, MSG["INFER"], bytes(built["spec"].in_frame_bytes))
        assert recv(c)[:2] == (MSG["INFER_RESULT"], 0)
    log = srv.stderr()
    assert log.count("reopening it with back-off") == 1 and log.count("is back: serving again") == 1, log
