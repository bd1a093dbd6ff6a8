/* crypto: the few primitives trackbridge needs, on OpenSSL — SHA-256, HMAC-SHA256, base64
 * (standard and URL alphabets), hex, and constant-time comparison. No key management here. */
#ifndef TB_CRYPTO_H
#define TB_CRYPTO_H

#include <stddef.h>

void crypto_sha256(const void *data, size_t len, unsigned char out[32]);
void crypto_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                        unsigned char out[32]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void crypto_hex(const unsigned char *in, size_t n, char *out);
/* Base64; url != 0 selects the URL alphabet without padding. Returns a new string or NULL. */
char *crypto_b64_encode(const void *data, size_t len, int url);
/* Decodes standard or URL base64 (padding optional, no whitespace). Returns a new buffer
 * (NUL-terminated for convenience) and its length, or NULL when s is not valid base64. */
unsigned char *crypto_b64_decode(const char *s, size_t n, size_t *len_out);
/* 1 when the n bytes are equal, 0 otherwise; time depends only on n. */
int crypto_equal(const void *a, const void *b, size_t n);
/* Constant-time equality of two strings of possibly different lengths (length leaks). */
int crypto_str_equal(const char *a, const char *b);

#endif
