/* registry.c — dispatch of the registry functions to a registry's ops. */
#include "codec_private.h"

void stele_registry_close(stele_registry *reg)
{
    if (reg)
        reg->ops->close(reg);
}

int stele_registry_register(stele_registry *reg, const char *subject,
                            const char *schema_text, int32_t *id,
                            stele_err *err)
{
    if (!reg || !subject || !*subject || !schema_text || !id)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: register needs a subject and text");
    return reg->ops->register_schema(reg, subject, schema_text, id, err);
}

int stele_registry_lookup(stele_registry *reg, int32_t id, const char **text,
                          stele_err *err)
{
    if (!reg || !text)
        return stele_err_set(err, STELE_EINVAL,
                             "registry: lookup needs a registry");
    if (id <= 0)
        return stele_err_set(err, STELE_ENOTFOUND,
                             "registry: schema id %d is not a valid id", id);
    return reg->ops->lookup(reg, id, text, err);
}
