/* SPDX-License-Identifier: GPL-2.0 */
#ifndef HARNESS_LINUX_ERR_H
#define HARNESS_LINUX_ERR_H
#include <stdint.h>
#define MAX_ERRNO 4095
#define IS_ERR(p) ((uintptr_t)(p) >= (uintptr_t)-MAX_ERRNO)
#define PTR_ERR(p) ((long)(intptr_t)(p))
#define ERR_PTR(e) ((void *)(intptr_t)(e))
#endif
