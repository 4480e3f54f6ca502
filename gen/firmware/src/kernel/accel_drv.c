// SPDX-License-Identifier: GPL-2.0
/*
 * accel_drv.c - Linux driver for a gen-generated dataflow accelerator behind a Xilinx AXI DMA.
 *
 * The accelerator is an AXI-Stream pipeline: the DMA's MM2S channel ("tx") feeds it one input frame, its
 * S2MM channel ("rx") brings back one output frame; an AXI-Lite block holds the registers of
 * gen/shell/regmap.py (accel_regs.h, generated). Both channels come from the dmaengine (xilinx_dma driver)
 * through the device-tree node's dmas/dma-names.
 *
 * User space sees a misc device /dev/<design>:
 *   write()  one input frame; returns when its output frame is back (or after the timeout)
 *   read()   that output frame (each open file has its own result slot)
 *   poll()   EPOLLIN when a result waits, EPOLLOUT when a frame may be written
 *   ioctl()  register reads, writes to writable registers, run-time weight upload, reset, timeout
 *
 * The DMA side (one frame out and back, errors, timeouts and the recovery after them) is in accel_dma.c.
 * The fabric clock (FCLK0) is enabled here and its rate checked against the bitstream's CLOCK_KHZ.
 *
 * One frame is in flight at a time (adev->lock); any number of processes may open the device, their frames
 * are served in turn. The device structure is reference counted so that unbinding the driver while files
 * are open is safe: those files then get -ENODEV.
 */

#include <linux/clk.h>
#include <linux/dma-mapping.h>
#include <linux/dmaengine.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/mod_devicetable.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/platform_device.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include "accel_clock.h"
#include "accel_design.h"
#include "accel_dma.h"
#include "accel_regs.h"
#include "accel_uapi.h"

static unsigned int timeout_ms = 1000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "time one frame may take before the DMA is stopped and the accelerator reset");

struct accel_dev {
	struct device *dev;
	void __iomem *regs;
	struct clk *clk;	/* FCLK0 */
	struct accel_dma dma;	/* the "tx" (MM2S) and "rx" (S2MM) channels */
	struct device *dma_dev;	/* the DMA controller: owner of the buffers below */
	/*
	 * Frames are a few KiB: coherent buffers cost one copy from/to user space and no per-frame mapping or
	 * cache maintenance (the Zynq's ACP is not used, so the CPU caches are not coherent with HP0).
	 */
	void *in_buf;
	void *out_buf;
	dma_addr_t in_dma;
	dma_addr_t out_dma;
	struct miscdevice misc;
	struct mutex lock;	/* one frame in flight; guards the registers, the buffers and @gone */
	bool gone;		/* removed: files still open get -ENODEV */
	struct kref ref;	/* one for the bound device, one per open file */
};

struct accel_file {
	struct accel_dev *adev;
	struct mutex lock;	/* guards the fields below; taken before adev->lock */
	wait_queue_head_t wq;	/* woken when a result arrives (poll) */
	unsigned int timeout_ms;
	bool has_result;
	u8 result[ACCEL_OUT_FRAME_BYTES];
};

static void accel_free(struct kref *ref)
{
	kfree(container_of(ref, struct accel_dev, ref));
}

static u32 accel_rd(struct accel_dev *adev, u32 off)
{
	return ioread32(adev->regs + off);
}

static void accel_wr(struct accel_dev *adev, u32 off, u32 val)
{
	iowrite32(val, adev->regs + off);
}

/* Drop whatever is in the pipeline and the sticky errors, so the next frame starts clean. */
static void accel_soft_reset(struct accel_dev *adev)
{
	accel_wr(adev, ACCEL_REG_CTRL, ACCEL_CTRL_SOFT_RESET | ACCEL_CTRL_CLEAR_ERRORS);
}

static bool accel_reg_allowed(u32 off, u64 mask)
{
	return off % 4 == 0 && off / 4 < 64 && (mask >> (off / 4) & 1);
}

/* Send adev->in_buf, receive into adev->out_buf. Called with adev->lock held. */
static int accel_run_frame(struct accel_dev *adev, unsigned int tmo_ms)
{
	int ret;

	ret = accel_dma_frame(&adev->dma, adev->in_dma, ACCEL_IN_FRAME_PADDED, adev->out_dma,
			      ACCEL_OUT_FRAME_PADDED, ACCEL_OUT_FRAME_BYTES, tmo_ms);
	if (ret == -ETIMEDOUT)
		dev_warn_ratelimited(adev->dev, "frame timed out after %u ms (STATUS 0x%08x): DMA reset, accelerator reset\n",
				     tmo_ms, accel_rd(adev, ACCEL_REG_STATUS));
	if (ret)
		accel_soft_reset(adev);	/* drop what is left of the frame in the pipeline */
	return ret;
}

/* Lock helpers that honour O_NONBLOCK: -EAGAIN instead of sleeping. */
static int accel_lock(struct mutex *m, struct file *file)
{
	if (file->f_flags & O_NONBLOCK)
		return mutex_trylock(m) ? 0 : -EAGAIN;
	return mutex_lock_interruptible(m) ? -ERESTARTSYS : 0;
}

static int accel_open(struct inode *inode, struct file *file)
{
	struct accel_dev *adev = container_of(file->private_data, struct accel_dev, misc);
	struct accel_file *af;

	af = kzalloc(sizeof(*af), GFP_KERNEL);
	if (!af)
		return -ENOMEM;
	/* misc_open holds misc_mtx, and remove() deregisters before dropping its reference: adev is alive */
	kref_get(&adev->ref);
	af->adev = adev;
	mutex_init(&af->lock);
	init_waitqueue_head(&af->wq);
	af->timeout_ms = READ_ONCE(timeout_ms);
	file->private_data = af;
	return stream_open(inode, file);
}

static int accel_release(struct inode *inode, struct file *file)
{
	struct accel_file *af = file->private_data;

	kref_put(&af->adev->ref, accel_free);
	mutex_destroy(&af->lock);
	kfree(af);
	return 0;
}

static ssize_t accel_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct accel_file *af = file->private_data;
	struct accel_dev *adev = af->adev;
	ssize_t ret;

	if (len != ACCEL_IN_FRAME_BYTES && len != ACCEL_IN_FRAME_PADDED)
		return -EINVAL;
	ret = accel_lock(&af->lock, file);
	if (ret)
		return ret;
	if (af->has_result) {
		ret = -EBUSY;	/* read() the previous result first */
		goto unlock_file;
	}
	ret = accel_lock(&adev->lock, file);
	if (ret)
		goto unlock_file;
	if (adev->gone) {
		ret = -ENODEV;
		goto unlock_dev;
	}
	if (copy_from_user(adev->in_buf, buf, len)) {
		ret = -EFAULT;
		goto unlock_dev;
	}
	memset((u8 *)adev->in_buf + len, 0, ACCEL_IN_FRAME_PADDED - len);
	ret = accel_run_frame(adev, af->timeout_ms);
	if (!ret) {
		memcpy(af->result, adev->out_buf, ACCEL_OUT_FRAME_BYTES);
		WRITE_ONCE(af->has_result, true);
		ret = len;
	}
unlock_dev:
	mutex_unlock(&adev->lock);
unlock_file:
	mutex_unlock(&af->lock);
	if (ret > 0)
		wake_up_interruptible(&af->wq);
	return ret;
}

static ssize_t accel_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	struct accel_file *af = file->private_data;
	ssize_t ret;

	if (len < ACCEL_OUT_FRAME_BYTES)
		return -EINVAL;
	/* a write() on this file in another thread holds af->lock until its result is in */
	ret = accel_lock(&af->lock, file);
	if (ret)
		return ret;
	if (READ_ONCE(af->adev->gone))
		ret = -ENODEV;
	else if (!af->has_result)
		ret = -ENODATA;	/* nothing written: a read would wait forever */
	else if (copy_to_user(buf, af->result, ACCEL_OUT_FRAME_BYTES))
		ret = -EFAULT;
	else {
		WRITE_ONCE(af->has_result, false);
		ret = ACCEL_OUT_FRAME_BYTES;
	}
	mutex_unlock(&af->lock);
	return ret;
}

static __poll_t accel_poll(struct file *file, poll_table *wait)
{
	struct accel_file *af = file->private_data;
	__poll_t mask;

	poll_wait(file, &af->wq, wait);
	mask = READ_ONCE(af->has_result) ? EPOLLIN | EPOLLRDNORM : EPOLLOUT | EPOLLWRNORM;
	if (READ_ONCE(af->adev->gone))
		mask |= EPOLLHUP | EPOLLERR;
	return mask;
}

static long accel_write_weight(struct accel_dev *adev, const struct accel_weight_io *w)
{
	unsigned int i;

	if (!(accel_rd(adev, ACCEL_REG_STATUS) & ACCEL_STATUS_RUNTIME_WEIGHTS))
		return -EOPNOTSUPP;
	accel_wr(adev, ACCEL_REG_CFG_LAYER, w->layer);
	accel_wr(adev, ACCEL_REG_CFG_ADDR, w->addr);
	for (i = 0; i < ACCEL_CFG_DATA_WORDS; i++)
		accel_wr(adev, ACCEL_REG_CFG_DATA0 + 4 * i, w->data[i]);
	accel_wr(adev, ACCEL_REG_CFG_COMMIT, 1);
	if (accel_rd(adev, ACCEL_REG_ERRORS) & ACCEL_ERRORS_CFG_ERROR) {
		accel_wr(adev, ACCEL_REG_ERRORS, ACCEL_ERRORS_CFG_ERROR);	/* w1c */
		return -ERANGE;
	}
	return 0;
}

static long accel_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct accel_file *af = file->private_data;
	struct accel_dev *adev = af->adev;
	void __user *uarg = (void __user *)arg;
	struct accel_weight_io wio;
	struct accel_reg_io rio;
	u32 ms;
	long ret;

	/* copy in and validate before taking the lock: faults and bad arguments never hold it */
	switch (cmd) {
	case ACCEL_IOC_READ_REG:
	case ACCEL_IOC_WRITE_REG:
		if (copy_from_user(&rio, uarg, sizeof(rio)))
			return -EFAULT;
		if (!accel_reg_allowed(rio.offset, cmd == ACCEL_IOC_READ_REG ? ACCEL_READABLE_MASK
									  : ACCEL_WRITABLE_MASK))
			return -EINVAL;
		break;
	case ACCEL_IOC_WRITE_WEIGHT:
		if (copy_from_user(&wio, uarg, sizeof(wio)))
			return -EFAULT;
		break;
	case ACCEL_IOC_RESET:
		break;
	case ACCEL_IOC_SET_TIMEOUT:
		if (get_user(ms, (u32 __user *)uarg))
			return -EFAULT;
		if (ms < ACCEL_TIMEOUT_MIN_MS || ms > ACCEL_TIMEOUT_MAX_MS)
			return -EINVAL;
		WRITE_ONCE(af->timeout_ms, ms);
		return 0;
	default:
		return -ENOTTY;
	}

	ret = accel_lock(&adev->lock, file);
	if (ret)
		return ret;
	if (adev->gone) {
		ret = -ENODEV;
		goto unlock;
	}
	switch (cmd) {
	case ACCEL_IOC_READ_REG:
		rio.value = accel_rd(adev, rio.offset);
		break;
	case ACCEL_IOC_WRITE_REG:
		accel_wr(adev, rio.offset, rio.value);
		break;
	case ACCEL_IOC_WRITE_WEIGHT:
		ret = accel_write_weight(adev, &wio);
		break;
	case ACCEL_IOC_RESET:
		accel_soft_reset(adev);
		break;
	}
unlock:
	mutex_unlock(&adev->lock);
	if (!ret && cmd == ACCEL_IOC_READ_REG && copy_to_user(uarg, &rio, sizeof(rio)))
		ret = -EFAULT;
	return ret;
}

static const struct file_operations accel_fops = {
	.owner = THIS_MODULE,
	.open = accel_open,
	.release = accel_release,
	.read = accel_read,
	.write = accel_write,
	.poll = accel_poll,
	.unlocked_ioctl = accel_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/* The bitstream must be the design this driver was generated for: same contract, same design.json. */
static int accel_check_identity(struct accel_dev *adev)
{
	u32 id = accel_rd(adev, ACCEL_REG_ID);
	u32 version = accel_rd(adev, ACCEL_REG_VERSION);
	u32 hash = accel_rd(adev, ACCEL_REG_DESIGN_HASH);
	u32 in_bytes = accel_rd(adev, ACCEL_REG_IN_FRAME_BYTES);
	u32 out_bytes = accel_rd(adev, ACCEL_REG_OUT_FRAME_BYTES);

	if (id != ACCEL_ID_MAGIC || version >> 16 != ACCEL_VERSION >> 16 || hash != (u32)ACCEL_DESIGN_HASH ||
	    in_bytes != ACCEL_IN_FRAME_BYTES || out_bytes != ACCEL_OUT_FRAME_BYTES) {
		dev_err(adev->dev,
			"not the %s design: ID 0x%08x VERSION 0x%08x DESIGN_HASH 0x%08x frames %u/%u bytes, expected 0x%08x 0x%08x 0x%08x %u/%u (bitstream and driver from different gen runs?)\n",
			ACCEL_DEV_NAME, id, version, hash, in_bytes, out_bytes, ACCEL_ID_MAGIC, ACCEL_VERSION,
			(u32)ACCEL_DESIGN_HASH, ACCEL_IN_FRAME_BYTES, ACCEL_OUT_FRAME_BYTES);
		return -ENODEV;
	}
	return 0;
}

static void accel_clock_off(void *clk)
{
	clk_disable_unprepare(clk);
}

/*
 * The fabric clock (FCLK0, <&clkc 15>): enabled for as long as the device is bound. The overlay's
 * assigned-clock-rates sets its rate before probe; nothing else guarantees that the boot image left it on.
 */
static int accel_clock_on(struct accel_dev *adev)
{
	struct clk *clk;
	int ret;

	clk = devm_clk_get(adev->dev, NULL);
	if (IS_ERR(clk))
		return dev_err_probe(adev->dev, PTR_ERR(clk), "no fabric clock (clocks = <&clkc 15>)\n");
	ret = clk_prepare_enable(clk);
	if (ret)
		return dev_err_probe(adev->dev, ret, "cannot enable the fabric clock\n");
	ret = devm_add_action_or_reset(adev->dev, accel_clock_off, clk);
	if (ret)
		return ret;
	adev->clk = clk;
	return 0;
}

/* FCLK0 must run at the bitstream's CLOCK_KHZ (accel_clock.h says how close). */
static int accel_check_clock_rate(struct accel_dev *adev)
{
	unsigned long rate = clk_get_rate(adev->clk);
	u32 want = accel_rd(adev, ACCEL_REG_CLOCK_KHZ);

	if (!accel_clock_matches(rate, want)) {
		dev_err(adev->dev, "fabric clock runs at %lu Hz, the design is built for %u kHz (CLOCK_KHZ): was the overlay's assigned-clock-rates applied?\n",
			rate, want);
		return -EINVAL;
	}
	return 0;
}

static int accel_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct accel_dev *adev;
	int ret;

	adev = kzalloc(sizeof(*adev), GFP_KERNEL);
	if (!adev)
		return -ENOMEM;
	kref_init(&adev->ref);
	mutex_init(&adev->lock);
	accel_dma_init(&adev->dma, dev);
	adev->dev = dev;

	/* the clock first: AXI-Lite reads of a fabric without its clock stall the bus */
	ret = accel_clock_on(adev);
	if (ret)
		goto put;
	adev->regs = devm_platform_ioremap_resource(pdev, 0);
	if (IS_ERR(adev->regs)) {
		ret = PTR_ERR(adev->regs);
		goto put;
	}
	ret = accel_check_identity(adev);
	if (ret)
		goto put;
	ret = accel_check_clock_rate(adev);
	if (ret)
		goto put;

	ret = accel_dma_request(&adev->dma);
	if (ret) {
		ret = dev_err_probe(dev, ret, "no \"tx\" and \"rx\" DMA channels (dmas/dma-names of the overlay)\n");
		goto put;
	}
	/* the buffers belong to the DMA controller's device: it is the one that reads and writes them */
	adev->dma_dev = adev->dma.tx->device->dev;
	adev->in_buf = dma_alloc_coherent(adev->dma_dev, ACCEL_IN_FRAME_PADDED, &adev->in_dma, GFP_KERNEL);
	if (!adev->in_buf) {
		ret = -ENOMEM;
		goto release_dma;
	}
	adev->out_buf = dma_alloc_coherent(adev->dma_dev, ACCEL_OUT_FRAME_PADDED, &adev->out_dma, GFP_KERNEL);
	if (!adev->out_buf) {
		ret = -ENOMEM;
		goto free_in;
	}
	accel_soft_reset(adev);

	adev->misc.minor = MISC_DYNAMIC_MINOR;
	adev->misc.name = ACCEL_DEV_NAME;
	adev->misc.fops = &accel_fops;
	adev->misc.parent = dev;
	adev->misc.mode = 0660;
	ret = misc_register(&adev->misc);
	if (ret)
		goto free_out;
	platform_set_drvdata(pdev, adev);
	dev_info(dev, "/dev/%s: design hash 0x%08x, %u-byte frames in, %u-byte frames out\n", ACCEL_DEV_NAME,
		 (u32)ACCEL_DESIGN_HASH, ACCEL_IN_FRAME_BYTES, ACCEL_OUT_FRAME_BYTES);
	return 0;

free_out:
	dma_free_coherent(adev->dma_dev, ACCEL_OUT_FRAME_PADDED, adev->out_buf, adev->out_dma);
free_in:
	dma_free_coherent(adev->dma_dev, ACCEL_IN_FRAME_PADDED, adev->in_buf, adev->in_dma);
release_dma:
	accel_dma_release(&adev->dma);
put:
	kref_put(&adev->ref, accel_free);
	return ret;
}

static void accel_teardown(struct platform_device *pdev)
{
	struct accel_dev *adev = platform_get_drvdata(pdev);

	misc_deregister(&adev->misc);	/* no new opens after this */
	mutex_lock(&adev->lock);	/* waits for a frame in flight */
	adev->gone = true;
	accel_dma_release(&adev->dma);
	dma_free_coherent(adev->dma_dev, ACCEL_OUT_FRAME_PADDED, adev->out_buf, adev->out_dma);
	dma_free_coherent(adev->dma_dev, ACCEL_IN_FRAME_PADDED, adev->in_buf, adev->in_dma);
	mutex_unlock(&adev->lock);
	kref_put(&adev->ref, accel_free);	/* freed now, or when the last open file is closed */
}

/* platform_driver.remove returns void from Linux 6.11 on */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
static void accel_remove(struct platform_device *pdev)
{
	accel_teardown(pdev);
}
#else
static int accel_remove(struct platform_device *pdev)
{
	accel_teardown(pdev);
	return 0;
}
#endif

static const struct of_device_id accel_of_match[] = {
	{ .compatible = ACCEL_COMPATIBLE },
	{ }
};
MODULE_DEVICE_TABLE(of, accel_of_match);

static struct platform_driver accel_driver = {
	.probe = accel_probe,
	.remove = accel_remove,
	.driver = {
		.name = ACCEL_DEV_NAME,
		.of_match_table = accel_of_match,
	},
};
module_platform_driver(accel_driver);

MODULE_DESCRIPTION("gen dataflow accelerator (" ACCEL_DEV_NAME ") behind an AXI DMA");
MODULE_LICENSE("GPL");
