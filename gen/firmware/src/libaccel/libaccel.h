/*
 * libaccel - user-space access to a gen-generated accelerator.
 *
 * The device is the kernel driver's /dev/<design> on the board, or "unix:PATH": a simulated device (the
 * golden model now, the Verilator model of the generated RTL later) serving gen's SIMDEV protocol on a Unix
 * socket, so that the library, the server and the client run unchanged on a PC.
 *
 * Every function returns 0 (or a count) on success and a negative error code -ACCEL_E_* (accel_proto.h) on
 * failure; accel_strerror() says what it means. An accel_t is not thread-safe: use one per thread, or a lock.
 *
 * When the device goes away after accel_open (simulator restarted, driver unbound or reloaded), calls answer
 * -ACCEL_E_UNAVAILABLE while the library reopens the same path with back-off (50 ms doubling to 1 s between
 * attempts, one attempt inside a call, never a sleep); once it is back (same design) calls work again.
 */
#ifndef LIBACCEL_H
#define LIBACCEL_H

#include <stddef.h>
#include <stdint.h>

#include "accel_proto.h"
#include "accel_regs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct accel accel_t;

/* class words after the output frame's header: ranks 2..k of a top-k head (gen/shell/regmap.py) */
#define ACCEL_MORE_CLASSES (ACCEL_NUM_CLASSES > 1 ? ACCEL_NUM_CLASSES - 1 : 0)

typedef struct {
	int32_t label;		/* arg-max class (rank 1); -1 when the design has no class output */
	uint32_t seq;		/* the accelerator's frame sequence number (mod 2^24) */
	uint32_t flags;		/* ACCEL_FLAG_SHORT / ACCEL_FLAG_LONG of the input frame */
	/* top-k head: classes largest first, classes[0] == label (ACCEL_NUM_CLASSES of them; -1 without a class) */
	int32_t classes[ACCEL_NUM_CLASSES > 0 ? ACCEL_NUM_CLASSES : 1];
	int32_t scores[ACCEL_NUM_SCORES];	/* output codes, NHWC order */
} accel_result_t;

/* path: NULL for ACCEL_DEV_PATH, a device node, or "unix:SOCKET". Checks ID, VERSION and DESIGN_HASH. */
int accel_open(const char *path, accel_t **out);
void accel_close(accel_t *a);
/* how long one frame may take before it is abandoned and the device reset (ms, default 1000) */
int accel_set_timeout(accel_t *a, unsigned int ms);

/* one frame of ACCEL_IN_FRAME_BYTES bytes (gen/shell/regmap.py input format) */
int accel_infer(accel_t *a, const uint8_t *frame, size_t len, accel_result_t *res);
/* n frames back to back (n * ACCEL_IN_FRAME_BYTES bytes); returns n or an error (res[0..k) valid up to it) */
int accel_infer_batch(accel_t *a, const uint8_t *frames, size_t n, accel_result_t *res);

int accel_read_reg(accel_t *a, uint32_t offset, uint32_t *value);
/* the NET_NUM_STATUS_REGS registers of NET_STATUS_REGS, in that order */
int accel_status(accel_t *a, uint32_t *values);
/* run-time weights: one word (nwords <= ACCEL_CFG_DATA_WORDS 32-bit parts, lowest first) of layer/addr */
int accel_write_weight(accel_t *a, uint32_t layer, uint32_t addr, const uint32_t *data, size_t nwords);
/* soft reset: pipeline and error flags */
int accel_reset(accel_t *a);

/* len bytes of whole input frames: 0 when every byte is an input code of the design (ACCEL_IN_CODE_*),
 * -ACCEL_E_BAD_FRAME with the offset of the first one that is not (the RTL would read it differently from
 * the golden model), -ACCEL_E_FRAME_SIZE when len is not a whole number of frames */
int accel_check_frames(const uint8_t *frames, size_t len, size_t *bad_offset);

const char *accel_strerror(int err);

/* the design's sizes, for bindings that cannot read the headers (ctypes) */
size_t accel_in_frame_bytes(void);
size_t accel_num_scores(void);
size_t accel_num_classes(void);
uint32_t accel_design_hash(void);

#ifdef __cplusplus
}
#endif

#endif /* LIBACCEL_H */
