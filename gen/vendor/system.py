"""The Zynq system around the accelerator, described once for the Vivado script and the device tree:
block-design cell names, the interrupt order on IRQ_F2P and the address map (from boards/*.yaml)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..boards import clock_mhz_of
from ..errors import GenError

# Block-design cells; the device-tree overlay's nodes describe the same two AXI-Lite slaves
PS7, DMA, ACCEL = "ps7", "axi_dma", "accel"

# xlconcat In0, In1, ... -> ps7 IRQ_F2P[0], [1], ...: (cell/pin, device-tree trigger type)
# AXI DMA interrupts are level-high (4); accel_top's `interrupt` is a one-cycle pulse: rising edge (1).
IRQS: tuple[tuple[str, int], ...] = ((f"{DMA}/mm2s_introut", 4), (f"{DMA}/s2mm_introut", 4), (f"{ACCEL}/interrupt", 1))
IRQ_F2P_FIRST_SPI = 61  # Zynq-7000 TRM, interrupt map: IRQ_F2P[7:0] are shared peripheral interrupts 61..68
IRQ_F2P_LOW = 8         # IRQ_F2P[7:0] -> SPI 61..68 (IRQ_F2P[15:8] are SPI 84..91: not contiguous, not used here)
FCLK0_DT_CLOCK = 15     # Zynq clock controller: fclk0 is clock 15 (<&clkc 15>)
# FCLK0 = IO PLL / DIVISOR0 / DIVISOR1 (Zynq-7000 TRM, "PL Clocks": FPGA0_CLK_CTRL, two 6-bit divisors). build.tcl
# selects the IO PLL as FCLK0's source; PS7's IO PLL runs at 1000 MHz (33.333 MHz crystal x 30: the IP default and
# the Zybo Z7 / PYNQ-Z2 presets).
IO_PLL_MHZ = 1000.0
FCLK_DIVISOR_MAX = 63


@dataclass(frozen=True)
class Fclk:
    mhz: float        # the frequency FCLK0 will have (= the design clock)
    divisor0: int
    divisor1: int
    pll_mhz: float = IO_PLL_MHZ

    @property
    def khz(self) -> int:
        return int(round(self.mhz * 1000))

    @property
    def hz(self) -> int:
        """The rate for the device tree's assigned-clock-rates, rounded up: Linux's Zynq clock driver
        (drivers/clk/zynq/clkc.c) divides FCLK0 with plain clk dividers, which pick the fastest rate not above
        the one asked for; rounding down (1000/7 MHz -> 142857142 Hz) would make them choose the next divisor."""
        return math.ceil(self.pll_mhz * 1e6 / (self.divisor0 * self.divisor1))


def _fclk_choices() -> dict[int, tuple[int, int]]:
    """divisor product -> (DIVISOR0, DIVISOR1), the smallest DIVISOR1 for each product."""
    out: dict[int, tuple[int, int]] = {}
    for d1 in range(1, FCLK_DIVISOR_MAX + 1):
        for d0 in range(1, FCLK_DIVISOR_MAX + 1):
            out.setdefault(d0 * d1, (d0, d1))
    return out


def fclk0(request_mhz: float) -> Fclk:
    """The FCLK0 setting for a requested design clock. Refused (GenError) unless FCLK0 can make it exactly (to
    the kHz the CLOCK_KHZ register holds): the RTL, firmware, report and timing constraint all assume one clock,
    so a silently rounded FCLK0 would make every one of them wrong. The message names the nearest ones."""
    choices = _fclk_choices()
    want = int(round(request_mhz * 1000))
    for prod in sorted(choices):
        f = IO_PLL_MHZ / prod
        if int(round(f * 1000)) == want:
            return Fclk(f, *choices[prod])
    freqs = sorted(IO_PLL_MHZ / p for p in choices)
    below = max((f for f in freqs if f < request_mhz), default=None)
    above = min((f for f in freqs if f > request_mhz), default=None)
    near = " or ".join(f"{f:.6g}" for f in (below, above) if f is not None)
    raise GenError(f"clock {request_mhz:g} MHz: the Zynq fabric clock FCLK0 (IO PLL {IO_PLL_MHZ:g} MHz / two "
                   f"integer divisors) cannot run at it; the nearest it can make are {near} MHz: ask for one of "
                   f"those (--clock-mhz)")


def design_clock_mhz(design, board: dict) -> float:
    """The design's clock (clock_mhz_of its folding)."""
    return clock_mhz_of(board, getattr(design, "folding", None))


def tcl_mhz(mhz: float) -> str:
    """A frequency for Vivado: up to 6 decimals, no trailing zeros (100 -> "100", 1000/7 -> "142.857143")."""
    return f"{mhz:.6f}".rstrip("0").rstrip(".")


def c_name(name: str) -> str:
    """Design name -> C identifier, device name (/dev/<name>) and file stem of the generated system."""
    s = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "accel"
    return s if s[0].isalpha() else f"accel_{s}"


@dataclass(frozen=True)
class System:
    part: str
    board_part: str | None
    clock_mhz: float
    dma_bits: int
    hp_port: str
    dma_base: int
    accel_base: int
    span: int
    ddr_bytes: int
    ps7_fallback: dict
    irq_base: int = 0       # IRQS[i] goes to IRQ_F2P[irq_base + i]; IRQ_F2P[0 .. irq_base-1] are tied low

    @property
    def board_part_prefix(self) -> str | None:
        """vendor:board:component of the board part, without the file version: build.tcl takes whichever version
        of the board files is installed (Digilent ships zybo-z7-20 1.1 and 1.2 side by side, for example)."""
        return ":".join(self.board_part.split(":")[:3]) if self.board_part else None

    def irq_dt(self, index: int) -> tuple[int, int, int]:
        """Device-tree `interrupts` cell for IRQS[index]: (SPI, number - 32, type)."""
        return 0, IRQ_F2P_FIRST_SPI + self.irq_base + index - 32, IRQS[index][1]


def irq_base(image_irqs) -> int:
    """The first IRQ_F2P line for IRQS such that none of their GIC numbers is one the board's standard image
    already claims (boards/*.yaml image_irqs): a second, non-shared request for the same line fails, and the
    driver that loses (xilinx_dma) leaves the accelerator without its DMA channel."""
    taken = set(image_irqs or ())
    for base in range(IRQ_F2P_LOW - len(IRQS) + 1):
        if not taken & {IRQ_F2P_FIRST_SPI - 32 + base + i for i in range(len(IRQS))}:
            return base
    raise GenError(f"no {len(IRQS)} free IRQ_F2P[7:0] lines: the board's image claims GIC SPI {sorted(taken)}")


def system(board: dict) -> System:
    amap = board.get("address_map", {})
    return System(part=board["part"], board_part=board.get("board_part"), clock_mhz=board["clock_mhz"],
                  dma_bits=board["dma"]["width_bits"], hp_port=board["dma"].get("port", "S_AXI_HP0"),
                  dma_base=int(amap.get("dma", 0x40400000)), accel_base=int(amap.get("accel", 0x43C00000)),
                  span=int(amap.get("span", 0x10000)), ddr_bytes=int(board.get("ddr_bytes", 0x20000000)),
                  ps7_fallback=dict((board.get("ps7") or {}).get("fallback") or {}),
                  irq_base=irq_base(board.get("image_irqs")))
