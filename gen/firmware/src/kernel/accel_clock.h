/* SPDX-License-Identifier: GPL-2.0 */
/* accel_clock.h - is the fabric clock the one the bitstream was built for? (tests/test_firmware_dma.py) */
#ifndef ACCEL_CLOCK_H
#define ACCEL_CLOCK_H

#include <linux/kernel.h>

/*
 * The design was built and timed for CLOCK_KHZ: a faster fabric clock breaks timing (wrong results), a slower
 * one every throughput figure. 0.1 % covers the crystals' rounding (33.333333 MHz x 30 on the Zybo Z7 gives
 * 99.999999 MHz for 100 MHz).
 */
static inline bool accel_clock_matches(unsigned long rate_hz, u32 clock_khz)
{
	unsigned long khz = DIV_ROUND_CLOSEST(rate_hz, 1000);
	unsigned long tol = clock_khz / 1000;

	return khz + tol >= clock_khz && khz <= clock_khz + tol;
}

#endif /* ACCEL_CLOCK_H */
