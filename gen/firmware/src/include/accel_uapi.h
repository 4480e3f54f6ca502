/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * accel_uapi.h - the driver's interface to user space (kernel module <-> libaccel).
 *
 * write() one input frame (ACCEL_IN_FRAME_BYTES, or padded to ACCEL_IN_FRAME_PADDED), then read() its output
 * frame (ACCEL_OUT_FRAME_BYTES, gen/shell/regmap.py format). The ioctls below read registers, write the few
 * writable ones, upload one run-time weight word atomically, reset the accelerator and set the frame timeout.
 */
#ifndef ACCEL_UAPI_H
#define ACCEL_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#include "accel_regs.h"

struct accel_reg_io {
	__u32 offset;	/* register offset (ACCEL_REG_*) */
	__u32 value;
};

struct accel_weight_io {
	__u32 layer;	/* CFG_LAYER */
	__u32 addr;	/* CFG_ADDR: {PE index, word address} */
	__u32 data[ACCEL_CFG_DATA_WORDS];	/* CFG_DATA0.. (lowest 32 bits first) */
};

#define ACCEL_IOC_MAGIC 'G'
#define ACCEL_IOC_READ_REG _IOWR(ACCEL_IOC_MAGIC, 1, struct accel_reg_io)
#define ACCEL_IOC_WRITE_REG _IOW(ACCEL_IOC_MAGIC, 2, struct accel_reg_io)
#define ACCEL_IOC_WRITE_WEIGHT _IOW(ACCEL_IOC_MAGIC, 3, struct accel_weight_io)
#define ACCEL_IOC_RESET _IO(ACCEL_IOC_MAGIC, 4)
#define ACCEL_IOC_SET_TIMEOUT _IOW(ACCEL_IOC_MAGIC, 5, __u32)

#define ACCEL_TIMEOUT_MIN_MS 1
#define ACCEL_TIMEOUT_MAX_MS 60000

#endif /* ACCEL_UAPI_H */
