/*
 * crc32c.c — CRC-32C two ways: slicing-by-8 (eight 256-entry tables, so
 * each step folds eight bytes with eight lookups instead of one per byte)
 * in portable C, and the SSE4.2 crc32 instruction, compiled for that
 * target alone so the rest of the binary runs on any x86-64. Which one
 * stele_crc32c uses is decided once, at the first call, by asking the CPU.
 */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82F63B78u /* Castagnoli, reflected */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SSE42_PATH 1
#include <nmmintrin.h>
#endif

typedef uint32_t (*crc_fn)(uint32_t crc, const unsigned char *p, size_t len);

static uint32_t table[8][256];
static crc_fn chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Eight bytes as a little-endian number, from any address: what the
 * reflected CRC consumes first sits in the low bits. */
static uint64_t load_le64(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
           (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* The register (not inverted) over p[0..len), by the tables. */
static uint32_t crc_tables(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
              table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
              table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#ifdef HAVE_SSE42_PATH
/* The register over p[0..len) by the crc32 instruction, eight bytes at a
 * time once p is aligned (an unaligned 8-byte load costs more where it
 * crosses a cache line). */
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
    while (len && ((uintptr_t)p & 7)) {
        crc = _mm_crc32_u8(crc, *p++);
        len--;
    }
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    crc = (uint32_t)c;
    while (len--)
        crc = _mm_crc32_u8(crc, *p++);
    return crc;
}
#endif

static void init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            table[t][i] =
                (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
    chosen = crc_tables;
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        chosen = crc_sse42;
#endif
}

uint32_t stele_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return len ? ~chosen(~crc, buf, len) : crc;
}

uint32_t stele_crc32c_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&once, init);
    return len ? ~crc_tables(~crc, buf, len) : crc;
}

bool stele_crc32c_hardware(void)
{
    pthread_once(&once, init);
    return chosen != crc_tables;
}
