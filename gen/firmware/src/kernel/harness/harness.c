// SPDX-License-Identifier: GPL-2.0
/*
 * harness.c - accel_dma.c in user space against a fake AXI DMA (tests/test_firmware_dma.py).
 *
 *   (in gen/firmware/src) cc -I kernel/harness -I kernel kernel/harness/harness.c kernel/accel_dma.c
 *   ./a.out SCENARIO      prints one line per frame: "frame N ret R recoveries K"
 *
 * The fake models what matters for recovery in the xilinx_dma driver on an AXI DMA (PG021):
 *  - the two channels share one reset: dmaengine_terminate_sync() on either resets both and then re-enables the
 *    interrupts of the terminated channel only (xilinx_dma_terminate_all -> xilinx_dma_chan_reset);
 *  - requesting a channel enables its interrupts (alloc_chan_resources of the 5.x drivers); starting a transfer
 *    does not (the worst case: 6.x drivers also enable them at every start);
 *  - a channel whose interrupts are off still moves the data but never calls back: the frame times out;
 *  - a channel is exclusive: requesting one that is held fails.
 */
#include <stdlib.h>
#include <string.h>

#include <linux/completion.h>
#include <linux/device.h>
#include <linux/err.h>
#include "accel_clock.h"
#include "accel_dma.h"

static struct {
	struct dma_chan chan[2];
	bool irq_on[2];
	bool stall;		/* the accelerator never answers: nothing completes */
	bool no_result;		/* the provider passes no dmaengine_result */
	enum dmaengine_tx_result fail[2];
	u32 short_by;		/* S2MM ends this many bytes early (TLAST) */
	int request_failures;	/* the next requests fail (-EBUSY) */
} hw;

static const char *const names[2] = { "tx", "rx" };

struct dma_chan *dma_request_chan(struct device *dev, const char *name)
{
	int id = strcmp(name, names[0]) == 0 ? 0 : 1;

	if (hw.request_failures > 0) {
		hw.request_failures--;
		return ERR_PTR(-EBUSY);
	}
	if (hw.chan[id].held)
		return ERR_PTR(-EBUSY);
	hw.chan[id].held = true;
	hw.chan[id].id = id;
	hw.irq_on[id] = true;
	return &hw.chan[id];
}

void dma_release_channel(struct dma_chan *chan)
{
	if (!chan->held)
		abort();	/* released twice */
	chan->held = false;
}

int dmaengine_terminate_sync(struct dma_chan *chan)
{
	/* one reset for the whole core; interrupts back on for this channel only */
	for (int i = 0; i < 2; i++) {
		hw.irq_on[i] = false;
		hw.chan[i].submitted = hw.chan[i].issued = false;
	}
	hw.irq_on[chan->id] = true;
	return 0;
}

struct dma_async_tx_descriptor *dmaengine_prep_slave_single(struct dma_chan *chan, dma_addr_t buf, size_t len,
							    enum dma_transfer_direction dir, unsigned long flags)
{
	if (!chan->held)
		abort();	/* a channel the client does not hold */
	memset(&chan->desc, 0, sizeof(chan->desc));
	chan->desc.len = len;
	chan->desc.dir = dir;
	return &chan->desc;
}

dma_cookie_t dmaengine_submit(struct dma_async_tx_descriptor *desc)
{
	struct dma_chan *chan = desc == &hw.chan[0].desc ? &hw.chan[0] : &hw.chan[1];

	chan->submitted = true;
	return 1;
}

void dma_async_issue_pending(struct dma_chan *chan)
{
	if (chan->submitted)
		chan->issued = true;
}

/* The hardware: every issued transfer finishes, unless the accelerator stalls. */
void fake_dma_run(void)
{
	for (int i = 0; i < 2; i++) {
		struct dma_chan *c = &hw.chan[i];
		struct dmaengine_result res = { hw.fail[i], i == 1 ? hw.short_by : 0 };

		if (!c->issued || hw.stall)
			continue;
		c->issued = c->submitted = false;
		if (hw.irq_on[i] && c->desc.callback_result)
			c->desc.callback_result(c->desc.callback_param, hw.no_result ? NULL : &res);
	}
}

static struct device dev = { "accel" };
static struct accel_dma d;
static int frames;

static void frame(void)
{
	int ret = accel_dma_frame(&d, 0x1000, 64, 0x2000, 64, 56, 100);

	printf("frame %d ret %d recoveries %u\n", ++frames, ret, d.recoveries);
}

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : "ok";

	if (!strcmp(s, "clock")) {	/* clock RATE_HZ CLOCK_KHZ: 1 if the driver accepts the rate */
		printf("%d\n", accel_clock_matches(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0)));
		return 0;
	}

	accel_dma_init(&d, &dev);
	if (accel_dma_request(&d))
		return 2;
	if (!strcmp(s, "ok")) {
		frame();
		frame();
	} else if (!strcmp(s, "timeout")) {
		hw.stall = true;
		frame();
		hw.stall = false;
		frame();
		frame();
	} else if (!strcmp(s, "tx_error") || !strcmp(s, "rx_error")) {
		hw.fail[s[0] == 't' ? 0 : 1] = s[0] == 't' ? DMA_TRANS_WRITE_FAILED : DMA_TRANS_READ_FAILED;
		frame();
		hw.fail[0] = hw.fail[1] = DMA_TRANS_NOERROR;
		frame();
	} else if (!strcmp(s, "short")) {
		hw.short_by = 16;	/* 48 of the 56 bytes the frame needs */
		frame();
		hw.short_by = 8;	/* 56: padding only missing */
		frame();
	} else if (!strcmp(s, "no_result")) {
		hw.no_result = true;
		frame();
	} else if (!strcmp(s, "request_fails")) {
		hw.stall = true;
		hw.request_failures = 2;
		frame();		/* times out; getting the channels back fails */
		hw.stall = false;
		frame();		/* fails once more: no channels */
		frame();		/* channels back: served */
	} else {
		return 2;
	}
	accel_dma_release(&d);
	printf("held %d %d\n", hw.chan[0].held, hw.chan[1].held);
	return 0;
}
