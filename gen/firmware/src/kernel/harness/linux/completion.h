/* SPDX-License-Identifier: GPL-2.0 */
/* Completions without threads: waiting runs the fake AXI DMA (harness.c) until it has nothing left to do. */
#ifndef HARNESS_LINUX_COMPLETION_H
#define HARNESS_LINUX_COMPLETION_H
#include <stdbool.h>
struct completion { bool done; };
void fake_dma_run(void);
static inline void init_completion(struct completion *c) { c->done = false; }
static inline void reinit_completion(struct completion *c) { c->done = false; }
static inline void complete(struct completion *c) { c->done = true; }
static inline unsigned long wait_for_completion_timeout(struct completion *c, unsigned long tmo)
{
	fake_dma_run();
	return c->done ? tmo : 0;
}
#endif
