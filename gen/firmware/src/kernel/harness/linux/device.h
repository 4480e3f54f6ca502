/* SPDX-License-Identifier: GPL-2.0 */
#ifndef HARNESS_LINUX_DEVICE_H
#define HARNESS_LINUX_DEVICE_H
#include <stdio.h>
struct device { const char *name; };
#define dev_err(dev, fmt, ...) printf("dev_err: " fmt, ##__VA_ARGS__)
#define dev_warn_ratelimited(dev, fmt, ...) printf("dev_warn: " fmt, ##__VA_ARGS__)
#endif
