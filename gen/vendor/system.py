"""The Zynq system around the accelerator, described once for the Vivado script and the device tree:
block-design cell names, the interrupt order on IRQ_F2P and the address map (from boards/*.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Block-design cells; the device-tree overlay's nodes describe the same two AXI-Lite slaves
PS7, DMA, ACCEL = "ps7", "axi_dma", "accel"

# xlconcat In0, In1, ... -> ps7 IRQ_F2P[0], [1], ...: (cell/pin, device-tree trigger type)
# AXI DMA interrupts are level-high (4); accel_top's `interrupt` is a one-cycle pulse: rising edge (1).
IRQS: tuple[tuple[str, int], ...] = ((f"{DMA}/mm2s_introut", 4), (f"{DMA}/s2mm_introut", 4), (f"{ACCEL}/interrupt", 1))
IRQ_F2P_FIRST_SPI = 61  # Zynq-7000 TRM, interrupt map: IRQ_F2P[7:0] are shared peripheral interrupts 61..68
FCLK0_DT_CLOCK = 15     # Zynq clock controller: fclk0 is clock 15 (<&clkc 15>)


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

    def irq_dt(self, index: int) -> tuple[int, int, int]:
        """Device-tree `interrupts` cell for IRQ_F2P[index]: (SPI, number - 32, type)."""
        return 0, IRQ_F2P_FIRST_SPI + index - 32, IRQS[index][1]


def system(board: dict) -> System:
    amap = board.get("address_map", {})
    return System(part=board["part"], board_part=board.get("board_part"), clock_mhz=board["clock_mhz"],
                  dma_bits=board["dma"]["width_bits"], hp_port=board["dma"].get("port", "S_AXI_HP0"),
                  dma_base=int(amap.get("dma", 0x40400000)), accel_base=int(amap.get("accel", 0x43C00000)),
                  span=int(amap.get("span", 0x10000)), ddr_bytes=int(board.get("ddr_bytes", 0x20000000)),
                  ps7_fallback=dict((board.get("ps7") or {}).get("fallback") or {}))
