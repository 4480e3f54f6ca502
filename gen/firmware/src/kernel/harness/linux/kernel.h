/* SPDX-License-Identifier: GPL-2.0 */
/* User-space stand-ins for the kernel API accel_dma.c uses (tests/test_firmware_dma.py): see harness.c. */
#ifndef HARNESS_LINUX_KERNEL_H
#define HARNESS_LINUX_KERNEL_H
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef uint32_t u32;
typedef uint64_t dma_addr_t;

#define DIV_ROUND_CLOSEST(x, d) (((x) + (d) / 2) / (d))
#define min_t(type, a, b) ((type)(a) < (type)(b) ? (type)(a) : (type)(b))
#endif
