/* fuzz_regex: compiles hostile patterns and matches hostile subjects. Input: one flags byte
 * (bits for i, m, s, x), the pattern up to the first NUL, then the subject (any bytes, NULs
 * and invalid UTF-8 included). Each pattern runs JIT-compiled and interpreted, with captures,
 * under lowered limits so that catastrophic patterns stay fast. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regex.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int limited;
    if (!limited) {
        rx_set_limits(&(struct rx_limits){.match_limit = 100000, .depth_limit = 1000,
                                          .heap_limit_kib = 4096, .jit_stack_kib = 256});
        limited = 1;
    }
    if (size < 1 || size > 64 * 1024)
        return 0;
    char flags[5];
    size_t nf = 0;
    static const char letters[] = "imsx";
    for (int b = 0; b < 4; b++)
        if (data[0] & (1u << b))
            flags[nf++] = letters[b];
    flags[nf] = '\0';
    const char *rest = (const char *)data + 1;
    size_t rlen = size - 1;
    const char *nul = memchr(rest, '\0', rlen);
    size_t plen = nul ? (size_t)(nul - rest) : rlen;
    char *pattern = malloc(plen + 1);
    if (!pattern)
        return 0;
    memcpy(pattern, rest, plen);
    pattern[plen] = '\0';
    const char *subject = nul ? nul + 1 : "";
    size_t slen = nul ? rlen - plen - 1 : 0;

    for (unsigned opts = 0; opts <= RX_NO_JIT; opts++) {
        char err[256];
        size_t off = 0;
        rx_t *rx = rx_compile_ex(pattern, (data[0] & 0x10) ? "q" : flags, opts, err, sizeof err,
                                 &off);
        if (!rx) {
            if (off > plen || err[0] == '\0')
                abort();
            continue;
        }
        json_t *caps = json_object();
        enum rx_result r = rx_match(rx, subject, slen, caps);
        if (r != RX_MATCH && json_object_size(caps) != 0)
            abort();
        if (r == RX_MATCH && !json_is_string(json_object_get(caps, "0")))
            abort();
        (void)rx_match(rx, subject, slen, NULL);
        (void)rx_capture_count(rx);
        json_decref(caps);
        rx_free(rx);
    }
    free(pattern);
    return 0;
}
