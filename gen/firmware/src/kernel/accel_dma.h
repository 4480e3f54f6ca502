/* SPDX-License-Identifier: GPL-2.0 */
/*
 * accel_dma.h - the accelerator's two AXI DMA channels (dmaengine client): one frame out, one frame back.
 *
 * Kept apart from accel_drv.c, with no other kernel dependency than dmaengine, completions and dev_* logging,
 * so that tests/test_firmware_dma.py can compile accel_dma.c against stub headers (gen/firmware/src/kernel/harness/)
 * and drive its completion, error and timeout paths in user space.
 */
#ifndef ACCEL_DMA_H
#define ACCEL_DMA_H

#include <linux/completion.h>
#include <linux/dmaengine.h>

struct device;

/* One direction of a frame: its completion and what the DMA provider reported (callback_result). */
struct accel_dma_xfer {
	struct completion done;
	struct dmaengine_result res;
};

struct accel_dma {
	struct device *dev;	/* the accelerator: "tx" and "rx" come from its dmas/dma-names */
	struct dma_chan *tx;	/* MM2S; NULL while a recovery could not get it back (retried per frame) */
	struct dma_chan *rx;	/* S2MM; likewise */
	struct accel_dma_xfer tx_x;
	struct accel_dma_xfer rx_x;
	unsigned int recoveries;	/* how often both channels were released and requested again */
};

void accel_dma_init(struct accel_dma *d, struct device *dev);
int accel_dma_request(struct accel_dma *d);
void accel_dma_release(struct accel_dma *d);
int accel_dma_recover(struct accel_dma *d);
int accel_dma_frame(struct accel_dma *d, dma_addr_t in, size_t in_len, dma_addr_t out, size_t out_len,
		    size_t out_min, unsigned int tmo_ms);

#endif /* ACCEL_DMA_H */
