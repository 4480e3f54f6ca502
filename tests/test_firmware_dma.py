"""The driver's DMA side (gen/firmware/src/kernel/accel_dma.c) in user space: compiled against stub dmaengine
headers and a fake AXI DMA (gen/firmware/src/kernel/harness/) that resets both channels on any terminate and
re-enables only the terminated channel's interrupts, as xilinx_dma does. Checks the completion, transfer-error,
short-frame and timeout paths, and that the device keeps serving after each."""

import os
import shutil
import subprocess

import pytest

from gen.firmware import SOURCES

KERNEL = SOURCES / "kernel"   # gen/firmware/src/kernel
CC = shutil.which("gcc") or shutil.which("cc")
ETIMEDOUT, EIO = -110, -5


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if CC is None:
        if os.environ.get("GEN_REQUIRE_KERNEL"):
            pytest.fail("GEN_REQUIRE_KERNEL is set but no C compiler")
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("dma") / "harness"
    r = subprocess.run([CC, "-std=gnu11", "-Wall", "-Werror", "-I", str(KERNEL / "harness"), "-I", str(KERNEL),
                        "-o", str(exe), str(KERNEL / "harness" / "harness.c"), str(KERNEL / "accel_dma.c")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return exe


def run(harness, scenario):
    r = subprocess.run([str(harness), scenario], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    frames = [tuple(int(w) for w in line.split()[1::2]) for line in r.stdout.splitlines()
              if line.startswith("frame ")]
    assert r.stdout.splitlines()[-1] == "held 0 0"   # both channels given back at the end, none twice
    return [(ret, rec) for _, ret, rec in frames], r.stdout


def test_frames_complete(harness):
    assert run(harness, "ok")[0] == [(0, 0), (0, 0)]


def test_timeout_recovers_and_keeps_serving(harness):
    # a stalled frame times out; both channels are stopped, released and requested again; the frames after it
    # complete (terminating tx then rx alone would leave MM2S with its interrupts off: every frame times out)
    assert run(harness, "timeout")[0] == [(ETIMEDOUT, 1), (0, 1), (0, 1)]


@pytest.mark.parametrize("side, result", [("tx", "MM2S result 2"), ("rx", "S2MM result 1")])
def test_transfer_error_is_reported_not_success(harness, side, result):
    frames, out = run(harness, f"{side}_error")
    assert frames == [(EIO, 1), (0, 1)]
    assert "DMA transfer error" in out and result in out


def test_short_output_frame_is_an_error(harness):
    frames, out = run(harness, "short")
    # 48 of 56 bytes: error (the channels are fine: no recovery); 56 bytes (only the DMA padding missing): fine
    assert frames == [(EIO, 0), (0, 0)]
    assert "short output frame: 48 bytes, expected 56" in out


def test_provider_without_result(harness):
    assert run(harness, "no_result")[0] == [(0, 0)]


def test_channels_unavailable_after_reset_are_retried(harness):
    frames, out = run(harness, "request_fails")
    assert frames == [(ETIMEDOUT, 1), (EIO, 2), (0, 3)]
    assert "retried with the next frame" in out


def test_driver_leaves_the_dma_to_accel_dma():
    """accel_drv.c goes through accel_dma.c for every transfer and teardown: one recovery sequence, the tested
    one; the results come from callback_result, not the residue of a finished cookie."""
    drv = (KERNEL / "accel_drv.c").read_text()
    dma = (KERNEL / "accel_dma.c").read_text()
    for call in ("dmaengine_terminate", "dma_release_channel", "dmaengine_prep", "dma_request_chan"):
        assert call not in drv, call
    assert "accel_dma_frame(" in drv and "accel_dma_release(" in drv
    assert "callback_result" in dma and "desc->callback =" not in dma and "dmaengine_tx_status" not in dma


@pytest.mark.parametrize("rate_hz, clock_khz, ok", [
    (100_000_000, 100_000, True),
    (99_999_999, 100_000, True),         # Zybo Z7: 33.333333 MHz crystal x 30 / 10
    (142_857_143, 142_857, True),        # 1000 MHz / 7
    (50_000_000, 100_000, False),        # the boot image's FCLK0 left at another rate
    (125_000_000, 100_000, False),       # faster than the design was timed for
    (100_200_000, 100_000, False),
])
def test_clock_rate_check(harness, rate_hz, clock_khz, ok):
    """The probe's FCLK0 check (accel_clock.h): refuses a fabric clock more than 0.1 % off CLOCK_KHZ."""
    r = subprocess.run([str(harness), "clock", str(rate_hz), str(clock_khz)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == str(int(ok))
