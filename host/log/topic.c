/* Topic checks every backend makes the same way, so they also say the
 * same thing. */
#include <stdio.h>

#include "common/err.h"
#include "internal.h"

int stele_log_check_partition(const char *topic, int32_t partitions,
                              int32_t partition, stele_err *err)
{
    if (partition < 0 || partition >= partitions)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "topic '%s' has no partition %d (it has %d)",
                             topic, partition, partitions);
    return 0;
}

static void describe(char *buf, size_t size, int32_t partitions, bool compacted)
{
    snprintf(buf, size, "%d partition%s, %s", partitions,
             partitions == 1 ? "" : "s",
             compacted ? "compacted" : "not compacted");
}

int stele_log_topic_matches(const char *topic, int32_t partitions,
                            bool compacted, const stele_topic_spec *spec,
                            stele_err *err)
{
    if (partitions == spec->partitions && compacted == spec->compacted)
        return 0;
    char have[64], want[64];
    describe(have, sizeof have, partitions, compacted);
    describe(want, sizeof want, spec->partitions, spec->compacted);
    return stele_err_set(err, STELE_ECONFLICT,
                         "topic '%s' exists with %s; asked for %s", topic, have,
                         want);
}
