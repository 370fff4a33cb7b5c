/*-------------------------------------------------------------------------
 *
 * querystring.h
 *		The pieces of a request's query string that turn SQL values into
 *		text, in plain C (no PostgreSQL dependency, so that they can be
 *		built and fuzzed on their own, like phone.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PS_QUERYSTRING_H
#define PS_QUERYSTRING_H

#include <stddef.h>

/*
 * Percent-encode s (RFC 3986: every byte but A-Z a-z 0-9 - _ . ~ becomes
 * %XX) into out, which must hold 3 * strlen(s) + 1 bytes.  Returns out.
 */
extern char *ps_qs_encode(const char *s, char *out);

/*
 * If the LIKE pattern pat is '%literal%' (backslash escapes allowed, no
 * other wildcard, a non-empty literal), write the literal to out (which
 * must hold strlen(pat) + 1 bytes) and return 1; else return 0.
 */
extern int	ps_qs_like_contains(const char *pat, char *out);

#endif							/* PS_QUERYSTRING_H */
