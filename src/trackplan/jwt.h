/* jwt: reads the times out of a JWT so the client can refresh it before it expires. The
 * signature is not checked (the server does that); a token is only ever decoded, never
 * logged. No I/O and no clock reads: callers pass the time. */
#ifndef TB_TRACKPLAN_JWT_H
#define TB_TRACKPLAN_JWT_H

#include <stdint.h>

/* Longest token accepted, in bytes. */
#define TP_JWT_MAX 8192

/* Decodes the payload of a compact JWT (header.payload.signature, base64url) and writes its
 * "exp" and "iat" claims in seconds since the epoch (0 when absent). Returns 0, or -1 when
 * the token is malformed: not three non-empty parts, bad base64, payload not a JSON object,
 * exp / iat present but not a non-negative number, or longer than TP_JWT_MAX. */
int tp_jwt_times(const char *token, int64_t *exp_s, int64_t *iat_s);

/* 1 when a token must be renewed before use at now_ms: less than min(60 s, 10 % of its
 * lifetime) remains. The lifetime runs from iat_s, or from obtained_ms (when the client got
 * it) if iat_s is 0. A token without exp (exp_s == 0) is never renewed early: a 401 does it. */
int tp_jwt_refresh_due(int64_t now_ms, int64_t obtained_ms, int64_t iat_s, int64_t exp_s);

#endif
