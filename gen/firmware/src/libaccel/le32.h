/* Little-endian 32-bit words of the frame and protocol formats (gen/shell/regmap.py, gen/firmware/protocol.py),
 * shared by libaccel and the inference server. */
#ifndef ACCEL_LE32_H
#define ACCEL_LE32_H

#include <stdint.h>

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xFF;
	p[1] = v >> 8 & 0xFF;
	p[2] = v >> 16 & 0xFF;
	p[3] = v >> 24 & 0xFF;
}

#endif
