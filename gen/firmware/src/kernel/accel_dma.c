// SPDX-License-Identifier: GPL-2.0
/*
 * accel_dma.c - one frame through the accelerator: MM2S ("tx") sends the input frame, S2MM ("rx") brings the
 * output frame back; transfer errors, short frames and timeouts are reported, and after a timeout or a
 * transfer error both channels are brought back so that the next frame works.
 *
 * Why recovery releases and requests both channels: the two channels of an AXI DMA share one reset (PG021,
 * "Soft reset": resetting either channel resets the whole core), and the xilinx_dma driver resets the channel
 * in dmaengine_terminate_*() and then re-enables the interrupts of that channel only. Terminating tx and then rx
 * therefore leaves MM2S reset with its interrupts off: on kernels whose xilinx_dma enables them again only in
 * alloc_chan_resources (5.x), every later frame would time out. Requesting both channels again after
 * terminating both goes through alloc_chan_resources for each; kernels that enable the interrupts at every
 * transfer start (6.x) are served the same way.
 */

#include <linux/device.h>
#include <linux/dmaengine.h>
#include <linux/err.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>

#include "accel_dma.h"

void accel_dma_init(struct accel_dma *d, struct device *dev)
{
	d->dev = dev;
	d->tx = NULL;
	d->rx = NULL;
	d->recoveries = 0;
	init_completion(&d->tx_x.done);
	init_completion(&d->rx_x.done);
}

/* Request "tx" and "rx"; on failure neither is held. */
int accel_dma_request(struct accel_dma *d)
{
	struct dma_chan *chan;

	chan = dma_request_chan(d->dev, "tx");
	if (IS_ERR(chan))
		return PTR_ERR(chan);
	d->tx = chan;
	chan = dma_request_chan(d->dev, "rx");
	if (IS_ERR(chan)) {
		dma_release_channel(d->tx);
		d->tx = NULL;
		return PTR_ERR(chan);
	}
	d->rx = chan;
	return 0;
}

/* Stop both channels (waiting for their callbacks), then give them back. */
void accel_dma_release(struct accel_dma *d)
{
	if (d->tx)
		dmaengine_terminate_sync(d->tx);
	if (d->rx)
		dmaengine_terminate_sync(d->rx);
	if (d->tx)
		dma_release_channel(d->tx);
	if (d->rx)
		dma_release_channel(d->rx);
	d->tx = NULL;
	d->rx = NULL;
}

/* After a timeout or a transfer error: both channels stopped, reset and set up again (see the top). */
int accel_dma_recover(struct accel_dma *d)
{
	int ret;

	d->recoveries++;
	accel_dma_release(d);
	ret = accel_dma_request(d);
	if (ret)
		dev_err(d->dev, "DMA channels not available again after a reset (%d): retried with the next frame\n",
			ret);
	return ret;
}

static void accel_dma_done(void *arg, const struct dmaengine_result *result)
{
	struct accel_dma_xfer *x = arg;

	/* providers without results pass NULL: completion is all they say (no residue: taken as a full frame) */
	if (result) {
		x->res = *result;
	} else {
		x->res.result = DMA_TRANS_NOERROR;
		x->res.residue = 0;
	}
	complete(&x->done);
}

static int accel_dma_submit(struct dma_chan *chan, dma_addr_t buf, size_t len,
			    enum dma_transfer_direction dir, struct accel_dma_xfer *x)
{
	struct dma_async_tx_descriptor *desc;

	desc = dmaengine_prep_slave_single(chan, buf, len, dir, DMA_PREP_INTERRUPT | DMA_CTRL_ACK);
	if (!desc)
		return -EIO;
	reinit_completion(&x->done);
	/* what a transfer that never calls back amounts to */
	x->res.result = DMA_TRANS_ABORTED;
	x->res.residue = len;
	desc->callback_result = accel_dma_done;
	desc->callback_param = x;
	if (dma_submit_error(dmaengine_submit(desc)))
		return -EIO;
	return 0;
}

/**
 * accel_dma_frame - send @in_len bytes from @in, receive up to @out_len bytes into @out
 * @d: the channels
 * @in: input frame (DMA address)
 * @in_len: its length
 * @out: output buffer (DMA address)
 * @out_len: its length
 * @out_min: bytes the output frame must have; fewer (the stream ended early) is an error
 * @tmo_ms: time the whole frame may take
 *
 * Return: 0; -ETIMEDOUT (channels recovered), -EIO for a transfer error (channels recovered), a short output
 * frame, or channels that could not be brought back. On any error the caller resets the accelerator.
 */
int accel_dma_frame(struct accel_dma *d, dma_addr_t in, size_t in_len, dma_addr_t out, size_t out_len,
		    size_t out_min, unsigned int tmo_ms)
{
	unsigned long tmo = msecs_to_jiffies(tmo_ms);
	size_t got;
	int ret;

	if ((!d->tx || !d->rx) && accel_dma_recover(d))
		return -EIO;

	/* the receive side first, so that the accelerator never stalls on its output stream */
	ret = accel_dma_submit(d->rx, out, out_len, DMA_DEV_TO_MEM, &d->rx_x);
	if (!ret)
		ret = accel_dma_submit(d->tx, in, in_len, DMA_MEM_TO_DEV, &d->tx_x);
	if (ret)
		goto recover;
	dma_async_issue_pending(d->rx);
	dma_async_issue_pending(d->tx);

	if (!wait_for_completion_timeout(&d->rx_x.done, tmo) || !wait_for_completion_timeout(&d->tx_x.done, tmo)) {
		ret = -ETIMEDOUT;
		goto recover;
	}
	if (d->tx_x.res.result != DMA_TRANS_NOERROR || d->rx_x.res.result != DMA_TRANS_NOERROR) {
		dev_warn_ratelimited(d->dev, "DMA transfer error (MM2S result %d, S2MM result %d)\n",
				     d->tx_x.res.result, d->rx_x.res.result);
		ret = -EIO;
		goto recover;
	}
	/* S2MM stops at the stream's TLAST: the residue is what the frame left unfilled */
	got = out_len - min_t(size_t, d->rx_x.res.residue, out_len);
	if (got < out_min) {
		dev_warn_ratelimited(d->dev, "short output frame: %zu bytes, expected %zu\n", got, out_min);
		return -EIO;
	}
	return 0;

recover:
	accel_dma_recover(d);
	return ret;
}
