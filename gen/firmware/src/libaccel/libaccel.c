/*
 * libaccel.c - see libaccel.h. Two back ends behind one small table of operations:
 *   chardev: the kernel driver (write a frame, read its result, ioctl for registers and weights)
 *   sim:     a simulated device on a Unix socket (gen's SIMDEV protocol, accel_proto.h), for PC tests
 * Everything above the table (frame checks, padding, output parsing, identity check, weight upload, reopening
 * a device that went away) is the same for both, so the tests on the simulated device exercise the code that
 * runs on the board.
 *
 * A device that goes away (simulator killed, driver unbound or reloaded: the file answers ENODEV) is closed;
 * every call then answers -ACCEL_E_UNAVAILABLE at once, except that one call per back-off interval tries to
 * reopen it (same path, identity checked again, timeout applied again). So a long-running server serves
 * again without a restart, and a dead device costs a caller no more than a failed open() now and then.
 */
#define _GNU_SOURCE
#include "libaccel.h"
#include "le32.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "accel_design.h"
#include "accel_uapi.h"

/* reopen back-off: the first retry right away, then twice the wait each time, at most RECONNECT_MAX_MS */
#define RECONNECT_MIN_MS 50
#define RECONNECT_MAX_MS 1000

struct accel_ops {
	/* open the device: a file descriptor, or -1 */
	int (*open)(const char *path);
	/* a->in (padded input frame) -> a->out (at least ACCEL_OUT_FRAME_BYTES) */
	int (*frame)(accel_t *a);
	int (*read_reg)(accel_t *a, uint32_t off, uint32_t *val);
	int (*write_reg)(accel_t *a, uint32_t off, uint32_t val);
	int (*write_weight)(accel_t *a, const struct accel_weight_io *w);
	int (*reset)(accel_t *a);
	int (*set_timeout)(accel_t *a, unsigned int ms);
};

struct accel {
	int fd;			/* -1 while the device is gone */
	const struct accel_ops *ops;
	char *path;		/* what to reopen */
	unsigned int timeout_ms;
	bool timeout_set;	/* accel_set_timeout was called: apply it again after a reopen */
	long long retry_at;	/* gone: no reopen attempt before this time (now_ms) */
	unsigned int backoff_ms;	/* gone: wait after the next failed attempt */
	uint32_t next_id;	/* sim: request id; replies to older (timed-out) requests are dropped */
	uint8_t in[ACCEL_IN_FRAME_PADDED];
	uint8_t out[ACCEL_OUT_FRAME_PADDED];
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* errno of the driver on an open file -> ACCEL_E_* */
static int from_errno(int e)
{
	switch (e) {
	case ETIMEDOUT:
		return -ACCEL_E_TIMEOUT;
	case EINVAL:
		return -ACCEL_E_FRAME_SIZE;
	case ENODEV:	/* the driver's answer to files of a removed device (accel_drv.c, adev->gone) */
	case ENXIO:
	case ESHUTDOWN:
		return -ACCEL_E_UNAVAILABLE;
	case ENOENT:
	case EACCES:
		return -ACCEL_E_OPEN;
	case ENOMEM:
		return -ACCEL_E_NOMEM;
	case ERANGE:
		return -ACCEL_E_CFG;
	case EOPNOTSUPP:
		return -ACCEL_E_NO_WEIGHTS;
	default:
		return -ACCEL_E_IO;
	}
}

/* ---- chardev back end ---------------------------------------------------------------------------------- */

static int cdev_ioctl(accel_t *a, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(a->fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? from_errno(errno) : 0;
}

static int cdev_frame(accel_t *a)
{
	ssize_t n;

	do
		n = write(a->fd, a->in, ACCEL_IN_FRAME_PADDED);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return from_errno(errno);
	do
		n = read(a->fd, a->out, sizeof(a->out));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return from_errno(errno);
	return n < ACCEL_OUT_FRAME_BYTES ? -ACCEL_E_IO : 0;
}

static int cdev_read_reg(accel_t *a, uint32_t off, uint32_t *val)
{
	struct accel_reg_io io = { .offset = off };
	int r = cdev_ioctl(a, ACCEL_IOC_READ_REG, &io);

	*val = io.value;
	return r == -ACCEL_E_FRAME_SIZE ? -ACCEL_E_ARG : r;
}

static int cdev_write_reg(accel_t *a, uint32_t off, uint32_t val)
{
	struct accel_reg_io io = { .offset = off, .value = val };
	int r = cdev_ioctl(a, ACCEL_IOC_WRITE_REG, &io);

	return r == -ACCEL_E_FRAME_SIZE ? -ACCEL_E_ARG : r;
}

static int cdev_write_weight(accel_t *a, const struct accel_weight_io *w)
{
	return cdev_ioctl(a, ACCEL_IOC_WRITE_WEIGHT, (void *)w);
}

static int cdev_reset(accel_t *a)
{
	return cdev_ioctl(a, ACCEL_IOC_RESET, NULL);
}

static int cdev_set_timeout(accel_t *a, unsigned int ms)
{
	uint32_t v = ms;

	return cdev_ioctl(a, ACCEL_IOC_SET_TIMEOUT, &v);
}

static int cdev_open(const char *path)
{
	return open(path, O_RDWR | O_CLOEXEC);
}

static const struct accel_ops cdev_ops = {
	cdev_open, cdev_frame, cdev_read_reg, cdev_write_reg, cdev_write_weight, cdev_reset, cdev_set_timeout,
};

/* ---- simulated device back end (SIMDEV protocol) ------------------------------------------------------- */

/* the simulator closed the socket or the connection broke: it is gone, reopen it later */
static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ACCEL_E_UNAVAILABLE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* recv_all timed out in the middle of a message: the stream is out of step, only a new connection helps */
#define RX_PARTIAL (-1000)

/* read exactly len bytes before the deadline (buf NULL: discard them) */
static int recv_all(int fd, void *buf, size_t len, long long deadline)
{
	uint8_t scratch[256];
	uint8_t *p = buf;
	size_t total = len;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		size_t want = p ? len : (len < sizeof(scratch) ? len : sizeof(scratch));
		ssize_t n;
		int r;

		if (left <= 0)
			return len == total ? -ACCEL_E_TIMEOUT : RX_PARTIAL;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -ACCEL_E_IO;
		if (r == 0)
			return len == total ? -ACCEL_E_TIMEOUT : RX_PARTIAL;
		n = recv(fd, p ? p : scratch, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ACCEL_E_UNAVAILABLE;	/* simulator gone (closed, killed) */
		if (p)
			p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void dev_close(accel_t *a);

/*
 * One request, its reply; *value and up to cap payload bytes into out. A timeout with no byte of a reply
 * leaves the connection in step (a late reply carries an old id and is skipped); a reply cut short or
 * malformed does not, so the connection is dropped and reopened by the next call.
 */
static int sim_call(accel_t *a, uint32_t op, uint32_t arg0, uint32_t arg1, const void *payload, uint32_t len,
		    uint32_t *value, uint8_t *out, uint32_t cap)
{
	long long deadline = now_ms() + a->timeout_ms;
	uint32_t id = ++a->next_id;
	uint8_t h[SIM_REQ_BYTES];
	int r;

	if (a->fd < 0)
		return -ACCEL_E_UNAVAILABLE;
	put_le32(h, op);
	put_le32(h + 4, id);
	put_le32(h + 8, arg0);
	put_le32(h + 12, arg1);
	put_le32(h + 16, len);
	r = send_all(a->fd, h, sizeof(h));
	if (!r && len)
		r = send_all(a->fd, payload, len);
	if (r)
		return r;
	for (;;) {
		uint8_t resp[SIM_RESP_BYTES];
		uint32_t rlen;
		int32_t result;

		r = recv_all(a->fd, resp, sizeof(resp), deadline);
		if (r == -ACCEL_E_TIMEOUT)
			return r;
		if (r)
			goto out_of_step;
		rlen = get_le32(resp + 16);
		result = (int32_t)get_le32(resp + 8);
		if (get_le32(resp + 4) != id) {	/* the late reply of a request that timed out */
			r = recv_all(a->fd, NULL, rlen, deadline);
			if (r)
				goto out_of_step;
			continue;
		}
		if (rlen > cap) {
			r = -ACCEL_E_IO;
			goto out_of_step;
		}
		r = recv_all(a->fd, out, rlen, deadline);
		if (r)
			goto out_of_step;
		if (value)
			*value = get_le32(resp + 12);
		return result < 0 ? result : 0;
	}
out_of_step:
	dev_close(a);
	return r == RX_PARTIAL ? -ACCEL_E_TIMEOUT : r;
}

static int sim_reset(accel_t *a)
{
	return sim_call(a, SIM_OP_RESET, 0, 0, NULL, 0, NULL, NULL, 0);
}

static int sim_frame(accel_t *a)
{
	int r = sim_call(a, SIM_OP_INFER, 0, 0, a->in, ACCEL_IN_FRAME_PADDED, NULL, a->out, sizeof(a->out));

	if (r == -ACCEL_E_TIMEOUT)
		sim_reset(a);	/* as the driver does: stop the frame, reset the pipeline */
	return r;
}

static int sim_read_reg(accel_t *a, uint32_t off, uint32_t *val)
{
	return sim_call(a, SIM_OP_READ_REG, off, 0, NULL, 0, val, NULL, 0);
}

static int sim_write_reg(accel_t *a, uint32_t off, uint32_t val)
{
	return sim_call(a, SIM_OP_WRITE_REG, off, val, NULL, 0, NULL, NULL, 0);
}

/* what the driver's ACCEL_IOC_WRITE_WEIGHT does, register by register */
static int sim_write_weight(accel_t *a, const struct accel_weight_io *w)
{
	uint32_t v;
	int r, i;

	r = sim_read_reg(a, ACCEL_REG_STATUS, &v);
	if (r)
		return r;
	if (!(v & ACCEL_STATUS_RUNTIME_WEIGHTS))
		return -ACCEL_E_NO_WEIGHTS;
	r = sim_write_reg(a, ACCEL_REG_CFG_LAYER, w->layer);
	if (!r)
		r = sim_write_reg(a, ACCEL_REG_CFG_ADDR, w->addr);
	for (i = 0; !r && i < ACCEL_CFG_DATA_WORDS; i++)
		r = sim_write_reg(a, ACCEL_REG_CFG_DATA0 + 4 * i, w->data[i]);
	if (!r)
		r = sim_write_reg(a, ACCEL_REG_CFG_COMMIT, 1);
	if (!r)
		r = sim_read_reg(a, ACCEL_REG_ERRORS, &v);
	if (r)
		return r;
	if (v & ACCEL_ERRORS_CFG_ERROR) {
		sim_write_reg(a, ACCEL_REG_ERRORS, ACCEL_ERRORS_CFG_ERROR);
		return -ACCEL_E_CFG;
	}
	return 0;
}

static int sim_set_timeout(accel_t *a, unsigned int ms)
{
	(void)a;
	(void)ms;
	return 0;	/* the timeout is a->timeout_ms, applied by sim_call */
}

static int sim_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static const struct accel_ops sim_ops = {
	sim_connect, sim_frame, sim_read_reg, sim_write_reg, sim_write_weight, sim_reset, sim_set_timeout,
};

/* ---- the device's life: open, identity, going away, reopening ------------------------------------------ */
static int check_identity(accel_t *a)
{
	static const struct { uint32_t reg, want; } ids[] = {
		{ ACCEL_REG_ID, ACCEL_ID_MAGIC },
		{ ACCEL_REG_DESIGN_HASH, (uint32_t)ACCEL_DESIGN_HASH },
		{ ACCEL_REG_IN_FRAME_BYTES, ACCEL_IN_FRAME_BYTES },
		{ ACCEL_REG_OUT_FRAME_BYTES, ACCEL_OUT_FRAME_BYTES },
		{ ACCEL_REG_NUM_SCORES, ACCEL_NUM_SCORES },
		{ ACCEL_REG_NUM_CLASSES, ACCEL_NUM_CLASSES },
	};
	uint32_t v;
	size_t i;
	int r;

	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		r = a->ops->read_reg(a, ids[i].reg, &v);
		if (r)
			return r;
		if (v != ids[i].want)
			return -ACCEL_E_MISMATCH;
	}
	r = a->ops->read_reg(a, ACCEL_REG_VERSION, &v);
	if (r)
		return r;
	return v >> 16 == ACCEL_VERSION >> 16 ? 0 : -ACCEL_E_MISMATCH;
}

static void dev_close(accel_t *a)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}

/* open a->path and make sure it is this design, with this library's timeout; 0 or an error, fd closed on one */
static int dev_open(accel_t *a)
{
	int r;

	a->fd = a->ops->open(a->path);
	if (a->fd < 0)
		return -ACCEL_E_OPEN;
	r = check_identity(a);
	if (!r && a->timeout_set)
		r = a->ops->set_timeout(a, a->timeout_ms);
	if (r)
		dev_close(a);
	return r;
}

/* before each operation: the device is open, or reopened now, or -ACCEL_E_UNAVAILABLE (-ACCEL_E_MISMATCH
 * when what came back at the path is another design) */
static int dev_ready(accel_t *a)
{
	long long now;
	int r;

	if (a->fd >= 0)
		return 0;
	now = now_ms();
	if (now < a->retry_at)
		return -ACCEL_E_UNAVAILABLE;
	r = dev_open(a);
	if (!r)
		return 0;
	a->retry_at = now_ms() + a->backoff_ms;
	a->backoff_ms = a->backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : a->backoff_ms * 2;
	return r == -ACCEL_E_MISMATCH ? r : -ACCEL_E_UNAVAILABLE;
}

/* after each operation on an open device: one that went away (or whose stream fell out of step, closed by
 * sim_call) is closed, to be reopened by a later call - the next one at once: a quick restart costs one
 * failed request */
static int dev_done(accel_t *a, int r)
{
	if (r == -ACCEL_E_UNAVAILABLE)
		dev_close(a);
	if (a->fd < 0) {
		a->retry_at = now_ms();
		a->backoff_ms = RECONNECT_MIN_MS;
	}
	return r;
}

/* ---- public API ---------------------------------------------------------------------------------------- */

int accel_open(const char *path, accel_t **out)
{
	accel_t *a;
	int r;

	if (!out)
		return -ACCEL_E_ARG;
	*out = NULL;
	if (!path)
		path = ACCEL_DEV_PATH;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ACCEL_E_NOMEM;
	a->timeout_ms = 1000;
	if (strncmp(path, "unix:", 5) == 0) {
		a->ops = &sim_ops;
		a->path = strdup(path + 5);
	} else {
		a->ops = &cdev_ops;
		a->path = strdup(path);
	}
	if (!a->path) {
		free(a);
		return -ACCEL_E_NOMEM;
	}
	/* the first open is not retried: a wrong path or another design is the caller's to fix */
	r = dev_open(a);
	if (r) {
		accel_close(a);
		return r;
	}
	*out = a;
	return 0;
}

void accel_close(accel_t *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
}

int accel_set_timeout(accel_t *a, unsigned int ms)
{
	int r = 0;

	if (!a || ms < ACCEL_TIMEOUT_MIN_MS || ms > ACCEL_TIMEOUT_MAX_MS)
		return -ACCEL_E_ARG;
	if (a->fd >= 0)		/* else it is applied when the device is reopened */
		r = dev_done(a, a->ops->set_timeout(a, ms));
	if (!r || r == -ACCEL_E_UNAVAILABLE) {
		a->timeout_ms = ms;
		a->timeout_set = true;
		r = 0;
	}
	return r;
}

static void parse_result(const uint8_t *p, accel_result_t *res)
{
	uint32_t label = get_le32(p);
	uint32_t hi = get_le32(p + 4);
	int i;

	res->label = label == ACCEL_NO_CLASS ? -1 : (int32_t)label;
	res->seq = hi & 0xFFFFFF;
	res->flags = hi >> 24;
	res->classes[0] = res->label;
	for (i = 0; i < ACCEL_MORE_CLASSES; i++)
		res->classes[1 + i] = (int32_t)get_le32(p + ACCEL_OUT_HEADER_BYTES + 4 * i);
	for (i = 0; i < ACCEL_NUM_SCORES; i++)
		res->scores[i] = (int32_t)get_le32(p + ACCEL_OUT_HEADER_BYTES + 4 * ACCEL_MORE_CLASSES +
						   ACCEL_SCORE_BYTES * i);
}

int accel_infer(accel_t *a, const uint8_t *frame, size_t len, accel_result_t *res)
{
	int r;

	if (!a || !frame || !res)
		return -ACCEL_E_ARG;
	if (len != ACCEL_IN_FRAME_BYTES)
		return -ACCEL_E_FRAME_SIZE;
	r = dev_ready(a);
	if (r)
		return r;
	memcpy(a->in, frame, len);
	memset(a->in + len, 0, ACCEL_IN_FRAME_PADDED - len);	/* regmap: zero padding to whole DMA beats */
	r = dev_done(a, a->ops->frame(a));
	if (r)
		return r;
	parse_result(a->out, res);
	/* the frame had the exact size, so a SHORT/LONG flag means the device and this library disagree */
	return res->flags ? -ACCEL_E_DEVICE : 0;
}

int accel_infer_batch(accel_t *a, const uint8_t *frames, size_t n, accel_result_t *res)
{
	size_t i;
	int r;

	if (!a || !frames || !res || n == 0 || n > 0x7FFFFFFF)
		return -ACCEL_E_ARG;
	/* one frame in flight at a time: the driver (and the accelerator's output order) keep it simple */
	for (i = 0; i < n; i++) {
		r = accel_infer(a, frames + i * ACCEL_IN_FRAME_BYTES, ACCEL_IN_FRAME_BYTES, &res[i]);
		if (r)
			return r;
	}
	return (int)n;
}

int accel_read_reg(accel_t *a, uint32_t offset, uint32_t *value)
{
	int r;

	if (!a || !value || offset % 4 || offset >= 4 * 64 || !(ACCEL_READABLE_MASK >> (offset / 4) & 1))
		return -ACCEL_E_ARG;
	r = dev_ready(a);
	return r ? r : dev_done(a, a->ops->read_reg(a, offset, value));
}

int accel_status(accel_t *a, uint32_t *values)
{
	static const uint32_t regs[NET_NUM_STATUS_REGS] = NET_STATUS_REGS;
	int i, r;

	if (!a || !values)
		return -ACCEL_E_ARG;
	r = dev_ready(a);
	for (i = 0; !r && i < NET_NUM_STATUS_REGS; i++)
		r = dev_done(a, a->ops->read_reg(a, regs[i], &values[i]));
	return r;
}

int accel_write_weight(accel_t *a, uint32_t layer, uint32_t addr, const uint32_t *data, size_t nwords)
{
	struct accel_weight_io w = { .layer = layer, .addr = addr };
	int r;

	if (!a || (!data && nwords) || nwords > ACCEL_CFG_DATA_WORDS)
		return -ACCEL_E_ARG;
	if (nwords)
		memcpy(w.data, data, nwords * sizeof(uint32_t));
	r = dev_ready(a);
	return r ? r : dev_done(a, a->ops->write_weight(a, &w));
}

int accel_reset(accel_t *a)
{
	int r;

	if (!a)
		return -ACCEL_E_ARG;
	r = dev_ready(a);
	return r ? r : dev_done(a, a->ops->reset(a));
}

/* the byte the RTL's input stage reads as the code the golden model computes with, for every byte value */
static bool in_code_ok(uint8_t b)
{
	const int lo = ACCEL_IN_CODE_LO, hi = ACCEL_IN_CODE_HI;	/* ints: no "always true" compare warnings */
	int code;

	if (ACCEL_IN_CODE_BIPOLAR)
		return b <= 1;	/* 1 = +1, 0 = -1; the RTL reads bit 0 only */
	code = ACCEL_IN_CODE_SIGNED ? (int)(int8_t)b : (int)b;
	return code >= lo && code <= hi;
}

int accel_check_frames(const uint8_t *frames, size_t len, size_t *bad_offset)
{
	size_t i;

	if (!frames || !bad_offset)
		return -ACCEL_E_ARG;
	if (len == 0 || len % ACCEL_IN_FRAME_BYTES)
		return -ACCEL_E_FRAME_SIZE;
	for (i = 0; i < len; i++) {
		if (!in_code_ok(frames[i])) {
			*bad_offset = i;
			return -ACCEL_E_BAD_FRAME;
		}
	}
	return 0;
}

const char *accel_strerror(int err)
{
	static const char *const texts[] = ACCEL_ERROR_TEXTS;
	unsigned int e = err < 0 ? (unsigned int)-err : (unsigned int)err;

	if (e < sizeof(texts) / sizeof(texts[0]) && texts[e])
		return texts[e];
	return "unknown error";
}

size_t accel_in_frame_bytes(void)
{
	return ACCEL_IN_FRAME_BYTES;
}

size_t accel_num_scores(void)
{
	return ACCEL_NUM_SCORES;
}

size_t accel_num_classes(void)
{
	return ACCEL_NUM_CLASSES;
}

uint32_t accel_design_hash(void)
{
	return (uint32_t)ACCEL_DESIGN_HASH;
}
