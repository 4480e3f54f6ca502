/*
 * accel_server - the board's inference server: TCP, gen's NET protocol (accel_proto.h, PROTOCOL.md).
 *
 *   accel_server [-d DEVICE] [-b ADDRESS] [-p PORT] [-t DEVICE_TIMEOUT_MS] [-r RECV_TIMEOUT_MS] [-c MAX_CLIENTS]
 *
 * DEVICE is /dev/<design> (default) or unix:SOCKET for a simulated device. One thread per client; the device
 * is shared under a mutex (it takes one frame at a time anyway), so several clients are served concurrently
 * and a slow or broken client never blocks the others. A message must arrive whole within RECV_TIMEOUT_MS of
 * its first byte. With -p 0 the system picks the port; the "listening on" line says which.
 *
 * Why C: on the board it is one small binary linked with libaccel.a - no interpreter or numpy on the Zynq's
 * root file system, nothing to install but the kernel module and this file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "accel_design.h"
#include "libaccel.h"
#include "le32.h"

struct server {
	accel_t *dev;
	pthread_mutex_t dev_lock;	/* one request on the device at a time */
	pthread_mutex_t lock;		/* guards the counters */
	unsigned int clients, max_clients;
	uint32_t requests, errors;
	int recv_timeout_ms;
};

struct client {
	struct server *srv;
	int fd;
	char name[64];
};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "accel_server: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum rx { RX_OK, RX_EOF, RX_TIMEOUT, RX_ERROR };

/* exactly len bytes; deadline < 0: wait as long as it takes (idle between messages) */
static enum rx recv_all(int fd, uint8_t *p, size_t len, long long deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int wait = -1, r;
		ssize_t n;

		if (deadline >= 0) {
			long long left = deadline - now_ms();

			if (left <= 0)
				return RX_TIMEOUT;
			wait = (int)left;
		}
		r = poll(&pfd, 1, wait);
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

static int send_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, uint8_t type, uint16_t status, const uint8_t *payload, uint32_t len)
{
	uint8_t h[NET_HEADER_BYTES];

	put_le32(h, NET_MAGIC);
	h[4] = NET_VERSION;
	h[5] = type;
	h[6] = status & 0xFF;
	h[7] = status >> 8;
	put_le32(h + 8, len);
	if (send_all(fd, h, sizeof(h)))
		return -1;
	return len ? send_all(fd, payload, len) : 0;
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
	logf_("%s: %s", c->name, text);
	count(c->srv, &c->srv->errors);
	return send_msg(c->fd, NET_MSG_ERROR, (uint16_t)code, (const uint8_t *)text, (uint32_t)n);
}

static int do_infer(struct client *c, const uint8_t *payload, uint32_t len)
{
	size_t n = len / ACCEL_IN_FRAME_BYTES, i, rec = 12 + 4 * ACCEL_NUM_SCORES;
	accel_result_t *res;
	uint8_t *out;
	int r, j;

	if (len == 0 || len % ACCEL_IN_FRAME_BYTES || n > NET_MAX_BATCH)
		return send_error(c, ACCEL_E_BAD_LENGTH, "INFER: %u bytes is not 1..%d frames of %d bytes",
				  len, NET_MAX_BATCH, ACCEL_IN_FRAME_BYTES);
	res = calloc(n, sizeof(*res));
	out = malloc(8 + n * rec);
	if (!res || !out) {
		free(res);
		free(out);
		return send_error(c, ACCEL_E_NOMEM, "out of memory");
	}
	pthread_mutex_lock(&c->srv->dev_lock);
	r = accel_infer_batch(c->srv->dev, payload, n, res);
	pthread_mutex_unlock(&c->srv->dev_lock);
	if (r < 0) {
		r = send_error(c, -r, "INFER: %s", accel_strerror(r));
	} else {
		put_le32(out, (uint32_t)n);
		put_le32(out + 4, ACCEL_NUM_SCORES);
		for (i = 0; i < n; i++) {
			uint8_t *p = out + 8 + i * rec;

			put_le32(p, (uint32_t)res[i].label);
			put_le32(p + 4, res[i].seq);
			put_le32(p + 8, res[i].flags);
			for (j = 0; j < ACCEL_NUM_SCORES; j++)
				put_le32(p + 12 + 4 * j, (uint32_t)res[i].scores[j]);
		}
		r = send_msg(c->fd, NET_MSG_INFER_RESULT, 0, out, (uint32_t)(8 + n * rec));
	}
	free(res);
	free(out);
	return r;
}

static int do_config(struct client *c, const uint8_t *payload, uint32_t len)
{
	uint32_t n = len / NET_CFG_RECORD_BYTES, i, data[ACCEL_CFG_DATA_WORDS];
	uint8_t reply[4];
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
	pthread_mutex_unlock(&c->srv->dev_lock);
	if (r < 0)
		return send_error(c, -r, "CONFIG: record %u of %u (layer %u, addr 0x%x): %s", i - 1, n,
				  get_le32(payload + (i - 1) * NET_CFG_RECORD_BYTES),
				  get_le32(payload + (i - 1) * NET_CFG_RECORD_BYTES + 4), accel_strerror(r));
	put_le32(reply, n);
	return send_msg(c->fd, NET_MSG_CONFIG_RESULT, 0, reply, sizeof(reply));
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
	return send_msg(c->fd, NET_MSG_STATUS_RESULT, 0, out, sizeof(out));
}

static int do_info(struct client *c, uint32_t len)
{
	/* order: INFO_FIELDS of gen/firmware/protocol.py */
	const uint32_t v[NET_NUM_INFO_FIELDS] = {
		(uint32_t)ACCEL_DESIGN_HASH, ACCEL_IN_FRAME_BYTES, ACCEL_NUM_SCORES, ACCEL_IN_HEIGHT,
		ACCEL_IN_WIDTH, ACCEL_IN_CHANNELS, ACCEL_IN_SIGNED, ACCEL_HAS_CLASS, ACCEL_RUNTIME_LAYERS,
	};
	uint8_t out[4 * NET_NUM_INFO_FIELDS];
	int i;

	if (len)
		return send_error(c, ACCEL_E_BAD_LENGTH, "INFO takes no payload (got %u bytes)", len);
	for (i = 0; i < NET_NUM_INFO_FIELDS; i++)
		put_le32(out + 4 * i, v[i]);
	return send_msg(c->fd, NET_MSG_INFO_RESULT, 0, out, sizeof(out));
}

/* one message; returns 0 to go on with this client, -1 to close the connection */
static int serve_one(struct client *c)
{
	uint8_t h[NET_HEADER_BYTES], *payload = NULL;
	long long deadline;
	uint32_t len;
	enum rx rx;
	int r;

	rx = recv_all(c->fd, h, 1, -1);	/* idle until a message starts */
	if (rx == RX_EOF)
		return -1;	/* client closed between messages: normal */
	deadline = now_ms() + c->srv->recv_timeout_ms;
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
			send_error(c, ACCEL_E_TRUNCATED, "message incomplete after %d ms", c->srv->recv_timeout_ms);
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
	close(c->fd);
	pthread_mutex_lock(&s->lock);
	s->clients--;
	pthread_mutex_unlock(&s->lock);
	free(c);
	return NULL;
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d DEVICE] [-b ADDRESS] [-p PORT] [-t DEVICE_TIMEOUT_MS] [-r RECV_TIMEOUT_MS] "
		"[-c MAX_CLIENTS]\n  DEVICE: %s (default) or unix:SOCKET (simulated device)\n", argv0, ACCEL_DEV_PATH);
}

int main(int argc, char **argv)
{
	struct server srv = { .max_clients = 16, .recv_timeout_ms = 5000 };
	const char *dev = ACCEL_DEV_PATH, *addr = "0.0.0.0";
	unsigned int dev_timeout = 1000;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	int port = NET_DEFAULT_PORT, opt, lfd, one = 1, r;

	while ((opt = getopt(argc, argv, "d:b:p:t:r:c:h")) != -1) {
		switch (opt) {
		case 'd': dev = optarg; break;
		case 'b': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 't': dev_timeout = (unsigned int)atoi(optarg); break;
		case 'r': srv.recv_timeout_ms = atoi(optarg); break;
		case 'c': srv.max_clients = (unsigned int)atoi(optarg); break;
		default: usage(argv[0]); return opt == 'h' ? 0 : 2;
		}
	}
	if (port < 0 || port > 65535 || srv.recv_timeout_ms <= 0 || srv.max_clients == 0 ||
	    inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
		usage(argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&srv.dev_lock, NULL);
	pthread_mutex_init(&srv.lock, NULL);

	r = accel_open(dev, &srv.dev);
	if (r < 0) {
		logf_("cannot use the accelerator at %s: %s", dev, accel_strerror(r));
		return 1;
	}
	r = accel_set_timeout(srv.dev, dev_timeout);
	if (r < 0) {
		logf_("device timeout %u ms: %s", dev_timeout, accel_strerror(r));
		return 1;
	}
	sa.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) < 0) {
		logf_("cannot listen on %s:%d: %s", addr, port, strerror(errno));
		return 1;
	}
	printf("accel_server: %s on %s, listening on %s:%d\n", ACCEL_DEV_NAME, dev, addr, ntohs(sa.sin_port));
	fflush(stdout);

	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		struct client *c;
		pthread_t t;
		int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED)
				logf_("accept: %s", strerror(errno));
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
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
		srv.clients++;
		pthread_mutex_unlock(&srv.lock);
		if (pthread_create(&t, NULL, client_main, c) != 0) {
			logf_("%s: cannot start a thread", c->name);
			pthread_mutex_lock(&srv.lock);
			srv.clients--;
			pthread_mutex_unlock(&srv.lock);
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
}
