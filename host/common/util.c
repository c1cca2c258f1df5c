#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint32_t stele_murmur2(const void *key, size_t len)
{
    const uint32_t seed = 0x9747b28cu, m = 0x5bd1e995u;
    const int r = 24;
    const unsigned char *data = key;
    uint32_t h = seed ^ (uint32_t)len;
    size_t len4 = len / 4;
    for (size_t i = 0; i < len4; i++) {
        size_t i4 = i * 4;
        uint32_t k = (uint32_t)data[i4] | (uint32_t)data[i4 + 1] << 8 |
                     (uint32_t)data[i4 + 2] << 16 |
                     (uint32_t)data[i4 + 3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t tail = len4 * 4;
    switch (len % 4) {
    case 3: h ^= (uint32_t)data[tail + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[tail + 1] << 8;  /* fall through */
    case 1: h ^= data[tail]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int32_t stele_partition_for_key(const void *key, size_t len, int32_t n)
{
    if (n <= 1)
        return 0;
    return (int32_t)((stele_murmur2(key, len) & 0x7fffffffu) % (uint32_t)n);
}

int64_t stele_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t stele_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pthread_mutex_t ulid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t ulid_last_ms = -1;
static unsigned char ulid_last_rand[10];

void stele_ulid(char out[STELE_ULID_LEN + 1])
{
    static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned char bytes[16];
    int64_t ms = stele_now_ms();

    pthread_mutex_lock(&ulid_lock);
    if (ms <= ulid_last_ms) {
        /* Same (or earlier, clock step) millisecond: keep order by
         * incrementing the random part, as the ULID spec's monotonic
         * mode does. */
        ms = ulid_last_ms;
        for (int i = 9; i >= 0; i--)
            if (++ulid_last_rand[i] != 0)
                break;
    } else {
        if (getrandom(ulid_last_rand, sizeof ulid_last_rand, 0) !=
            (ssize_t)sizeof ulid_last_rand) {
            /* No entropy source: fall back to the clock so ids stay
             * unique within this process. */
            int64_t ns = stele_mono_ns();
            memcpy(ulid_last_rand, &ns, sizeof ns);
        }
        ulid_last_ms = ms;
    }
    for (int i = 0; i < 6; i++)
        bytes[i] = (unsigned char)((uint64_t)ms >> (40 - 8 * i));
    memcpy(bytes + 6, ulid_last_rand, 10);
    pthread_mutex_unlock(&ulid_lock);

    /* 128 bits as 26 base32 digits, most significant first (the first
     * digit carries only 3 bits). */
    int bit = -2; /* 26*5 = 130 bits: two leading zero bits */
    for (int i = 0; i < STELE_ULID_LEN; i++) {
        unsigned v = 0;
        for (int j = 0; j < 5; j++, bit++) {
            unsigned b = 0;
            if (bit >= 0)
                b = (bytes[bit / 8] >> (7 - bit % 8)) & 1u;
            v = (v << 1) | b;
        }
        out[i] = b32[v];
    }
    out[STELE_ULID_LEN] = '\0';
}

int stele_mkdir_parent(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}
