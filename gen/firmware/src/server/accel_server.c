/*
 * accel_server - the board's inference server: TCP, gen's NET protocol (accel_proto.h, PROTOCOL.md).
 *
 *   accel_server [-d DEVICE] [-b ADDRESS] [-p PORT] [-t DEVICE_TIMEOUT_MS] [-r MESSAGE_TIMEOUT_MS]
 *                [-i IDLE_TIMEOUT_MS] [-c MAX_CLIENTS]        (usage() says the ranges and defaults)
 *
 * DEVICE is /dev/<design> (default) or unix:SOCKET for a simulated device. One thread per client; the device
 * is shared under a mutex (it takes one frame at a time anyway), so several clients are served concurrently
 * and a slow or broken client never blocks the others. No client holds one of the MAX_CLIENTS slots for
 * nothing: a request must arrive whole, and its reply be taken whole, within MESSAGE_TIMEOUT_MS (a client
 * dribbling bytes or not reading is cut off), and a connection idle between messages for IDLE_TIMEOUT_MS is
 * closed. With -p 0 the system picks the port; the "listening on" line says which.
 *
 * When the device goes away (simulator restarted, driver reloaded) requests that need it get UNAVAILABLE
 * while libaccel reopens it with back-off; the server serves again on its own, no restart. Accept errors
 * (out of file descriptors, ...) back off instead of spinning, and the log is rate-limited, so a flood of
 * bad clients cannot fill the board's disk.
 *
 * Why C: on the board it is one small binary linked with libaccel.a - no interpreter or numpy on the Zynq's
 * root file system, nothing to install but the kernel module and this file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accel_design.h"
#include "accel_uapi.h"	/* ACCEL_TIMEOUT_MIN_MS, ..._MAX_MS */
#include "libaccel.h"
#include "le32.h"

/* option defaults */
#define DEFAULT_MSG_TIMEOUT_MS 5000
#define DEFAULT_IDLE_TIMEOUT_MS 60000
#define DEFAULT_MAX_CLIENTS 16
#define DEFAULT_DEV_TIMEOUT_MS 1000
#define MAX_MAX_CLIENTS 1024		/* one thread each */
#define MAX_MSG_TIMEOUT_MS 600000
#define MAX_IDLE_TIMEOUT_MS 86400000

/* accept errors: wait ACCEPT_BACKOFF_MIN_MS, doubling to ..._MAX_MS, before the next accept; log one line
 * per ACCEPT_LOG_INTERVAL_MS at most, with the count of those not logged */
#define ACCEPT_BACKOFF_MIN_MS 10
#define ACCEPT_BACKOFF_MAX_MS 1000
#define ACCEPT_LOG_INTERVAL_MS 10000
/* all log lines: at most LOG_BURST a second, then one line saying how many were dropped */
#define LOG_BURST 20

struct server {
	accel_t *dev;
	const char *dev_path;
	bool dev_up;			/* under dev_lock: for one log line per device loss / return */
	pthread_mutex_t dev_lock;	/* one request on the device at a time */
	pthread_mutex_t lock;		/* guards the counters */
	unsigned int clients, max_clients;	/* clients: threads not done */
	struct client *list;		/* every client thread not yet joined (under lock) */
	uint32_t requests, errors;
	int msg_timeout_ms, idle_timeout_ms;
};

struct client {
	struct server *srv;
	int fd;
	char name[64];
	pthread_t thread;
	bool done;		/* under srv->lock: the thread has closed fd and is ending; main() joins it */
	struct client *next;	/* srv->list */
};

static volatile sig_atomic_t stopping;	/* SIGTERM / SIGINT: leave main() normally (sanitizers report) */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
	static long long window;
	static unsigned int lines, dropped;
	long long now = now_ms();
	va_list ap;

	pthread_mutex_lock(&log_lock);
	if (now - window >= 1000) {
		if (dropped)
			fprintf(stderr, "accel_server: (%u log lines dropped: more than %d a second)\n", dropped,
				LOG_BURST);
		window = now;
		lines = dropped = 0;
	}
	if (lines < LOG_BURST) {
		lines++;
		va_start(ap, fmt);
		fprintf(stderr, "accel_server: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	} else {
		dropped++;
	}
	pthread_mutex_unlock(&log_lock);
}

enum rx { RX_OK, RX_EOF, RX_TIMEOUT, RX_ERROR };

/* exactly len bytes before the deadline */
static enum rx recv_all(int fd, uint8_t *p, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return RX_TIMEOUT;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return RX_ERROR;
		if (r == 0)
			return RX_TIMEOUT;
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return RX_ERROR;
		if (n == 0)
			return RX_EOF;
		p += n;
		len -= (size_t)n;
	}
	return RX_OK;
}

/* all of it before the deadline: a client that does not read its replies is cut off, not waited for */
static int send_all(int fd, const uint8_t *p, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		long long left = deadline - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return -1;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* one reply, taken whole by the client within timeout_ms */
static int send_msg(int fd, int timeout_ms, uint8_t type, uint16_t status, const uint8_t *payload, uint32_t len)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t h[NET_HEADER_BYTES];

	put_le32(h, NET_MAGIC);
	h[4] = NET_VERSION;
	h[5] = type;
	h[6] = status & 0xFF;
	h[7] = status >> 8;
	put_le32(h + 8, len);
	if (send_all(fd, h, sizeof(h), deadline))
		return -1;
	return len ? send_all(fd, payload, len, deadline) : 0;
}

static int reply(struct client *c, uint8_t type, const uint8_t *payload, uint32_t len)
{
	if (send_msg(c->fd, c->srv->msg_timeout_ms, type, 0, payload, len) == 0)
		return 0;
	logf_("%s: reply not taken within %d ms (or connection lost): closing", c->name, c->srv->msg_timeout_ms);
	return -1;
}

static void count(struct server *s, uint32_t *counter)
{
	pthread_mutex_lock(&s->lock);
	(*counter)++;
	pthread_mutex_unlock(&s->lock);
}

/* an ERROR reply: the status code and a line of text */
static int send_error(struct client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int send_error(struct client *c, int code, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	/* a lost device is logged once by device_result(), not for every request that finds it gone */
	if (code != ACCEL_E_UNAVAILABLE)
		logf_("%s: %s", c->name, text);
	count(c->srv, &c->srv->errors);
	return send_msg(c->fd, c->srv->msg_timeout_ms, NET_MSG_ERROR, (uint16_t)code, (const uint8_t *)text,
			(uint32_t)n);
}

/* called under dev_lock with each device call's result: one log line when the device goes and comes back */
static void device_result(struct server *s, int r)
{
	bool up = r != -ACCEL_E_UNAVAILABLE && r != -ACCEL_E_MISMATCH;

	if (up == s->dev_up)
		return;
	s->dev_up = up;
	if (up)
		logf_("device %s is back: serving again", s->dev_path);
	else
		logf_("device %s: %s; reopening it with back-off", s->dev_path, accel_strerror(r));
}

/* the error text for a byte outside the input codes (ACCEL_IN_CODE_*) */
static int bad_frame(struct client *c, const uint8_t *payload, size_t off)
{
	size_t frame = off / ACCEL_IN_FRAME_BYTES, byte = off % ACCEL_IN_FRAME_BYTES;

	if (ACCEL_IN_CODE_BIPOLAR)
		return send_error(c, ACCEL_E_BAD_FRAME, "INFER: frame %zu byte %zu is %u, not an input code "
				  "(bipolar: 0 for -1, 1 for +1)", frame, byte, payload[off]);
	return send_error(c, ACCEL_E_BAD_FRAME, "INFER: frame %zu byte %zu is %d (0x%02x), not an input code "
			  "(%s %d..%d)", frame, byte, ACCEL_IN_CODE_SIGNED ? (int)(int8_t)payload[off] :
			  (int)payload[off], payload[off], ACCEL_IN_CODE_SIGNED ? "signed" : "unsigned",
			  ACCEL_IN_CODE_LO, ACCEL_IN_CODE_HI);
}

static int do_infer(struct client *c, const uint8_t *payload, uint32_t len)
{
	size_t n = len / ACCEL_IN_FRAME_BYTES, i, rec = 12 + 4 * (ACCEL_MORE_CLASSES + ACCEL_NUM_SCORES), bad;
	accel_result_t *res;
	uint8_t *out;
	int r, j;

	if (len == 0 || len % ACCEL_IN_FRAME_BYTES || n > NET_MAX_BATCH)
		return send_error(c, ACCEL_E_BAD_LENGTH, "INFER: %u bytes is not 1..%d frames of %d bytes",
				  len, NET_MAX_BATCH, ACCEL_IN_FRAME_BYTES);
	/* the RTL reads only the low bits of a byte: an out-of-range byte would give another answer than the
	 * model was evaluated with, so it is an error, not a result */
	if (accel_check_frames(payload, len, &bad) == -ACCEL_E_BAD_FRAME)
		return bad_frame(c, payload, bad);
	res = calloc(n, sizeof(*res));
	out = malloc(12 + n * rec);
	if (!res || !out) {
		free(res);
		free(out);
		return send_error(c, ACCEL_E_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&c->srv->dev_lock);
	r = accel_infer_batch(c->srv->dev, payload, n, res);
	device_result(c->srv, r);
	pthread_mutex_unlock(&c->srv->dev_lock);
	if (r < 0) {
		r = send_error(c, -r, "INFER: %s", accel_strerror(r));
	} else {
		put_le32(out, (uint32_t)n);
		put_le32(out + 4, ACCEL_NUM_SCORES);
		put_le32(out + 8, ACCEL_NUM_CLASSES);
		for (i = 0; i < n; i++) {
			uint8_t *p = out + 12 + i * rec;

			put_le32(p, (uint32_t)res[i].label);
			put_le32(p + 4, res[i].seq);
			put_le32(p + 8, res[i].flags);
			p += 12;
			for (j = 0; j < ACCEL_MORE_CLASSES; j++, p += 4)
				put_le32(p, (uint32_t)res[i].classes[1 + j]);
			for (j = 0; j < ACCEL_NUM_SCORES; j++, p += 4)
				put_le32(p, (uint32_t)res[i].scores[j]);
		}
		r = reply(c, NET_MSG_INFER_RESULT, out, (uint32_t)(12 + n * rec));
	}
	free(res);
	free(out);
	return r;
}

static int do_config(struct client *c, const uint8_t *payload, uint32_t len)
{
	uint32_t n = len / NET_CFG_RECORD_BYTES, i, data[ACCEL_CFG_DATA_WORDS];
	uint8_t out[4];
	int r = 0, j;

	if (len == 0 || len % NET_CFG_RECORD_BYTES)
		return send_error(c, ACCEL_E_BAD_LENGTH, "CONFIG: %u bytes is not whole %d-byte weight records",
				  len, NET_CFG_RECORD_BYTES);
	pthread_mutex_lock(&c->srv->dev_lock);
	for (i = 0; i < n && !r; i++) {
		const uint8_t *p = payload + i * NET_CFG_RECORD_BYTES;

		for (j = 0; j < ACCEL_CFG_DATA_WORDS; j++)
			data[j] = get_le32(p + 8 + 4 * j);
		r = accel_write_weight(c->srv->dev, get_le32(p), get_le32(p + 4), data, ACCEL_CFG_DATA_WORDS);
	}
	device_result(c->srv, r);
	pthread_mutex_unlock(&c->srv->dev_lock);
	if (r < 0)
		return send_error(c, -r, "CONFIG: record %u of %u (layer %u, addr 0x%x): %s", i - 1, n,
				  get_le32(payload + (i - 1) * NET_CFG_RECORD_BYTES),
				  get_le32(payload + (i - 1) * NET_CFG_RECORD_BYTES + 4), accel_strerror(r));
	put_le32(out, n);
	return reply(c, NET_MSG_CONFIG_RESULT, out, sizeof(out));
}

static int do_status(struct client *c, uint32_t len)
{
	uint32_t regs[NET_NUM_STATUS_REGS];
	uint8_t out[4 * (NET_NUM_STATUS_REGS + NET_NUM_SERVER_COUNTERS)];
	struct server *s = c->srv;
	int r, i;

	if (len)
		return send_error(c, ACCEL_E_BAD_LENGTH, "STATUS takes no payload (got %u bytes)", len);
	pthread_mutex_lock(&s->dev_lock);
	r = accel_status(s->dev, regs);
	device_result(s, r);
	pthread_mutex_unlock(&s->dev_lock);
	if (r < 0)
		return send_error(c, -r, "STATUS: %s", accel_strerror(r));
	for (i = 0; i < NET_NUM_STATUS_REGS; i++)
		put_le32(out + 4 * i, regs[i]);
	pthread_mutex_lock(&s->lock);
	put_le32(out + 4 * i, s->requests);
	put_le32(out + 4 * i + 4, s->errors);
	put_le32(out + 4 * i + 8, s->clients);
	pthread_mutex_unlock(&s->lock);
	return reply(c, NET_MSG_STATUS_RESULT, out, sizeof(out));
}

static int do_info(struct client *c, uint32_t len)
{
	/* order: INFO_FIELDS of gen/firmware/protocol.py */
	const uint32_t v[NET_NUM_INFO_FIELDS] = {
		(uint32_t)ACCEL_DESIGN_HASH, ACCEL_IN_FRAME_BYTES, ACCEL_NUM_SCORES, ACCEL_IN_HEIGHT,
		ACCEL_IN_WIDTH, ACCEL_IN_CHANNELS, ACCEL_IN_SIGNED, ACCEL_HAS_CLASS, ACCEL_RUNTIME_LAYERS,
		ACCEL_NUM_CLASSES,
	};
	uint8_t out[4 * NET_NUM_INFO_FIELDS];
	int i;

	if (len)
		return send_error(c, ACCEL_E_BAD_LENGTH, "INFO takes no payload (got %u bytes)", len);
	for (i = 0; i < NET_NUM_INFO_FIELDS; i++)
		put_le32(out + 4 * i, v[i]);
	return reply(c, NET_MSG_INFO_RESULT, out, sizeof(out));
}

/* one message; returns 0 to go on with this client, -1 to close the connection */
static int serve_one(struct client *c)
{
	uint8_t h[NET_HEADER_BYTES], *payload = NULL;
	long long deadline;
	uint32_t len;
	enum rx rx;
	int r;

	/* idle until a message starts, but not for ever: an idle client holds one of the max_clients slots */
	rx = recv_all(c->fd, h, 1, now_ms() + c->srv->idle_timeout_ms);
	if (rx == RX_EOF)
		return -1;	/* client closed between messages: normal */
	if (rx == RX_TIMEOUT) {
		logf_("%s: idle for %d ms: closing", c->name, c->srv->idle_timeout_ms);
		return -1;
	}
	/* from its first byte, the whole message within the message timeout: dribbling does not extend it */
	deadline = now_ms() + c->srv->msg_timeout_ms;
	if (rx == RX_OK)
		rx = recv_all(c->fd, h + 1, sizeof(h) - 1, deadline);
	if (rx == RX_OK)
		count(c->srv, &c->srv->requests);
	if (rx == RX_OK && (get_le32(h) != NET_MAGIC || h[4] != NET_VERSION)) {
		send_error(c, ACCEL_E_BAD_MAGIC, "bad magic 0x%08x or version %u (expected 0x%08x, %d)", get_le32(h),
			   h[4], NET_MAGIC, NET_VERSION);
		return -1;
	}
	len = get_le32(h + 8);
	if (rx == RX_OK && len > NET_MAX_PAYLOAD) {
		send_error(c, ACCEL_E_TOO_LARGE, "payload of %u bytes (at most %d)", len, NET_MAX_PAYLOAD);
		return -1;
	}
	if (rx == RX_OK && len) {
		payload = malloc(len);
		if (!payload) {
			send_error(c, ACCEL_E_NOMEM, "out of memory for a %u-byte payload", len);
			return -1;
		}
		rx = recv_all(c->fd, payload, len, deadline);
	}
	if (rx != RX_OK) {
		if (rx == RX_TIMEOUT)
			send_error(c, ACCEL_E_TRUNCATED, "message incomplete after %d ms", c->srv->msg_timeout_ms);
		else {
			logf_("%s: connection lost in the middle of a message", c->name);
			count(c->srv, &c->srv->errors);
		}
		free(payload);
		return -1;
	}
	switch (h[5]) {
	case NET_MSG_INFER:
		r = do_infer(c, payload, len);
		break;
	case NET_MSG_CONFIG:
		r = do_config(c, payload, len);
		break;
	case NET_MSG_STATUS:
		r = do_status(c, len);
		break;
	case NET_MSG_INFO:
		r = do_info(c, len);
		break;
	default:
		/* the payload has been read: the stream is still in step, keep the client */
		r = send_error(c, ACCEL_E_UNKNOWN_TYPE, "unknown message type 0x%02x", h[5]);
		break;
	}
	free(payload);
	return r ? -1 : 0;
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	struct server *s = c->srv;

	while (serve_one(c) == 0)
		;
	/* the slot is free before the client sees the close (it may connect again at once), and main() never
	 * shuts down an fd number that was closed here and reused */
	pthread_mutex_lock(&s->lock);
	close(c->fd);
	c->done = true;
	s->clients--;
	pthread_mutex_unlock(&s->lock);
	return NULL;	/* main() joins the thread and frees c */
}

/* join the client threads that are done (all of them with `all`, after cutting their connections) */
static void reap_clients(struct server *s, bool all)
{
	struct client **pp, *c, *done = NULL;

	pthread_mutex_lock(&s->lock);
	for (pp = &s->list; (c = *pp);) {
		if (all && !c->done)
			shutdown(c->fd, SHUT_RDWR);	/* its recv/send return at once: the thread ends */
		if (all || c->done) {
			*pp = c->next;
			c->next = done;
			done = c;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&s->lock);
	while ((c = done)) {
		done = c->next;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

static void usage(FILE *f, const char *argv0)
{
	fprintf(f, "usage: %s [-d DEVICE] [-b ADDRESS] [-p PORT] [-t DEVICE_TIMEOUT_MS] [-r MESSAGE_TIMEOUT_MS]\n"
		"       [-i IDLE_TIMEOUT_MS] [-c MAX_CLIENTS]\n"
		"  -d DEVICE   %s (default) or unix:SOCKET (simulated device); reopened with back-off if it goes\n"
		"              away (requests get UNAVAILABLE meanwhile)\n"
		"  -b ADDRESS  IPv4 address to listen on (default 0.0.0.0)\n"
		"  -p PORT     TCP port, 0..65535 (default %d; 0: any free port, printed on the 'listening on' line)\n"
		"  -t MS       device timeout per frame, %d..%d (default %d); then the device is reset\n"
		"  -r MS       message timeout, 1..%d (default %d): a request must arrive whole, and its reply be\n"
		"              taken whole, within MS of its first byte, else the connection is closed\n"
		"  -i MS       idle timeout, 1..%d (default %d): a connection with no request for MS is closed\n"
		"  -c N        clients served at once, 1..%d (default %d); more get BUSY\n"
		"Bad values: one 'error:' line, exit status 2.\n",
		argv0, ACCEL_DEV_PATH, NET_DEFAULT_PORT, ACCEL_TIMEOUT_MIN_MS, ACCEL_TIMEOUT_MAX_MS,
		DEFAULT_DEV_TIMEOUT_MS, MAX_MSG_TIMEOUT_MS, DEFAULT_MSG_TIMEOUT_MS, MAX_IDLE_TIMEOUT_MS,
		DEFAULT_IDLE_TIMEOUT_MS, MAX_MAX_CLIENTS, DEFAULT_MAX_CLIENTS);
}

/* the whole of arg a decimal integer in lo..hi, else exit 2 with one line naming the option and the range */
static int int_option(int opt, const char *arg, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	/* strtol alone takes " 80", "+80" and "": only digits, with an optional minus (so -1 gets the range) */
	if ((*arg != '-' && (*arg < '0' || *arg > '9')) || errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "error: -%c '%s': %s must be an integer in %ld..%ld\n", opt, arg, what, lo, hi);
		exit(2);
	}
	return (int)v;
}

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* accept errors: one log line per ACCEPT_LOG_INTERVAL_MS with the count since the last one */
static void accept_error(int err)
{
	static long long next_log;
	static unsigned int unlogged;
	long long now = now_ms();

	if (now < next_log) {
		unlogged++;
		return;
	}
	if (unlogged)
		logf_("accept: %s (and %u more accept errors in the last %d s)", strerror(err), unlogged,
		      ACCEPT_LOG_INTERVAL_MS / 1000);
	else
		logf_("accept: %s (backing off)", strerror(err));
	unlogged = 0;
	next_log = now + ACCEPT_LOG_INTERVAL_MS;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);	/* a signal cuts it short: main() then sees `stopping` */
}

int main(int argc, char **argv)
{
	struct server srv = { .max_clients = DEFAULT_MAX_CLIENTS, .msg_timeout_ms = DEFAULT_MSG_TIMEOUT_MS,
			      .idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS, .dev_up = true };
	const char *dev = ACCEL_DEV_PATH, *addr = "0.0.0.0";
	unsigned int dev_timeout = DEFAULT_DEV_TIMEOUT_MS;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct in_addr any;
	struct sigaction stop = { .sa_handler = on_stop };	/* no SA_RESTART: accept() returns EINTR */
	socklen_t salen = sizeof(sa);
	int port = NET_DEFAULT_PORT, opt, lfd, one = 1, r, backoff = 0;

	opterr = 0;	/* getopt's own messages are not one 'error:' line */
	while ((opt = getopt(argc, argv, ":d:b:p:t:r:i:c:h")) != -1) {
		switch (opt) {
		case 'd':
			if (!*optarg) {
				fprintf(stderr, "error: -d '': DEVICE must be a device node or unix:SOCKET\n");
				return 2;
			}
			dev = optarg;
			break;
		case 'b':
			if (inet_pton(AF_INET, optarg, &any) != 1) {
				fprintf(stderr, "error: -b '%s': ADDRESS must be an IPv4 address (a.b.c.d)\n", optarg);
				return 2;
			}
			addr = optarg;
			break;
		case 'p':
			port = int_option(opt, optarg, 0, 65535, "PORT");
			break;
		case 't':
			dev_timeout = (unsigned int)int_option(opt, optarg, ACCEL_TIMEOUT_MIN_MS, ACCEL_TIMEOUT_MAX_MS,
							       "DEVICE_TIMEOUT_MS");
			break;
		case 'r':
			srv.msg_timeout_ms = int_option(opt, optarg, 1, MAX_MSG_TIMEOUT_MS, "MESSAGE_TIMEOUT_MS");
			break;
		case 'i':
			srv.idle_timeout_ms = int_option(opt, optarg, 1, MAX_IDLE_TIMEOUT_MS, "IDLE_TIMEOUT_MS");
			break;
		case 'c':
			srv.max_clients = (unsigned int)int_option(opt, optarg, 1, MAX_MAX_CLIENTS, "MAX_CLIENTS");
			break;
		case 'h':
			usage(stderr, argv[0]);
			return 0;
		case ':':
			fprintf(stderr, "error: -%c needs a value (see -h)\n", optopt);
			return 2;
		default:
			fprintf(stderr, "error: unknown option -%c (see -h)\n", optopt);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "error: unexpected argument '%s' (see -h)\n", argv[optind]);
		return 2;
	}
	inet_pton(AF_INET, addr, &sa.sin_addr);	/* checked above */
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGINT, &stop, NULL);
	pthread_mutex_init(&srv.dev_lock, NULL);
	pthread_mutex_init(&srv.lock, NULL);

	srv.dev_path = dev;
	r = accel_open(dev, &srv.dev);
	if (r < 0) {
		logf_("cannot use the accelerator at %s: %s", dev, accel_strerror(r));
		return 1;
	}
	r = accel_set_timeout(srv.dev, dev_timeout);
	if (r < 0) {
		logf_("device timeout %u ms: %s", dev_timeout, accel_strerror(r));
		accel_close(srv.dev);
		return 1;
	}
	sa.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
		logf_("cannot listen on %s:%d: %s", addr, port, strerror(errno));
		accel_close(srv.dev);
		return 1;
	}
	printf("accel_server: %s on %s, listening on %s:%d\n", ACCEL_DEV_NAME, dev, addr, ntohs(sa.sin_port));
	fflush(stdout);

	while (!stopping) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		struct client *c;
		int fd;

		/* after an error (out of descriptors or memory, ...) wait instead of spinning: the cause is not
		 * gone the next microsecond, and each retry would log a line */
		if (backoff)
			sleep_ms(backoff);
		reap_clients(&srv, false);	/* threads that ended since the last accept (at most max_clients) */
		if (stopping)
			break;
		fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;	/* a signal, or a client gone before we took it: nothing wrong here */
			accept_error(errno);
			backoff = backoff ? (backoff * 2 > ACCEPT_BACKOFF_MAX_MS ? ACCEPT_BACKOFF_MAX_MS : backoff * 2)
					  : ACCEPT_BACKOFF_MIN_MS;
			continue;
		}
		backoff = 0;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			backoff = ACCEPT_BACKOFF_MIN_MS;
			continue;
		}
		c->srv = &srv;
		c->fd = fd;
		snprintf(c->name, sizeof(c->name), "%s:%d", inet_ntoa(peer.sin_addr), ntohs(peer.sin_port));
		pthread_mutex_lock(&srv.lock);
		if (srv.clients >= srv.max_clients) {
			pthread_mutex_unlock(&srv.lock);
			send_error(c, ACCEL_E_BUSY, "too many clients (%u)", srv.max_clients);
			close(fd);
			free(c);
			continue;
		}
		/* under the lock: the thread cannot finish and be reaped before it is on the list */
		if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
			pthread_mutex_unlock(&srv.lock);
			logf_("%s: cannot start a thread", c->name);
			close(fd);
			free(c);
			backoff = ACCEPT_BACKOFF_MIN_MS;
			continue;
		}
		srv.clients++;
		c->next = srv.list;
		srv.list = c;
		pthread_mutex_unlock(&srv.lock);
	}
	/* cut the clients off and wait for their threads, close the device: an orderly end, so that a sanitizer
	 * build checks for leaks with no thread half-way through its exit */
	close(lfd);
	reap_clients(&srv, true);
	pthread_mutex_lock(&srv.dev_lock);
	accel_close(srv.dev);
	srv.dev = NULL;
	pthread_mutex_unlock(&srv.dev_lock);
	logf_("stopped");
	return 0;
}
