/* SPDX-License-Identifier: GPL-2.0 */
/* The dmaengine client API as include/linux/dmaengine.h declares it, implemented by the fake in harness.c. */
#ifndef HARNESS_LINUX_DMAENGINE_H
#define HARNESS_LINUX_DMAENGINE_H
#include <linux/kernel.h>

struct device;
typedef int dma_cookie_t;

enum dma_transfer_direction { DMA_MEM_TO_DEV = 1, DMA_DEV_TO_MEM = 2 };
enum dma_ctrl_flags { DMA_PREP_INTERRUPT = 1, DMA_CTRL_ACK = 2 };
enum dmaengine_tx_result { DMA_TRANS_NOERROR = 0, DMA_TRANS_READ_FAILED, DMA_TRANS_WRITE_FAILED, DMA_TRANS_ABORTED };

struct dmaengine_result {
	enum dmaengine_tx_result result;
	u32 residue;
};

typedef void (*dma_async_tx_callback_result)(void *param, const struct dmaengine_result *result);

struct dma_async_tx_descriptor {
	dma_async_tx_callback_result callback_result;
	void *callback_param;
	size_t len;
	enum dma_transfer_direction dir;
};

struct dma_chan {
	int id;			/* 0 MM2S, 1 S2MM */
	bool held;
	bool submitted;
	bool issued;
	struct dma_async_tx_descriptor desc;
};

#define dma_submit_error(cookie) ((cookie) < 0 ? -EIO : 0)

struct dma_chan *dma_request_chan(struct device *dev, const char *name);
void dma_release_channel(struct dma_chan *chan);
int dmaengine_terminate_sync(struct dma_chan *chan);
struct dma_async_tx_descriptor *dmaengine_prep_slave_single(struct dma_chan *chan, dma_addr_t buf, size_t len,
							    enum dma_transfer_direction dir, unsigned long flags);
dma_cookie_t dmaengine_submit(struct dma_async_tx_descriptor *desc);
void dma_async_issue_pending(struct dma_chan *chan);
#endif
