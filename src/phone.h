/*-------------------------------------------------------------------------
 *
 * phone.h
 *		Phone numbers to E.164, in plain C (no PostgreSQL dependency, so the
 *		normalizer can be built and fuzzed on its own).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PS_PHONE_H
#define PS_PHONE_H

#include <stdbool.h>
#include <stddef.h>

/* "+" + at most 15 digits + NUL */
#define PS_PHONE_MAXLEN 17

/*
 * Normalize a phone number as a person may write it to E.164 ("+15555550123").
 *
 * Accepted: digits with spaces, dots, dashes, slashes and parentheses between
 * them; an international number starts with "+" or the international prefix
 * "00" (or "011" when the default country is in the North American Numbering
 * Plan), followed by a country calling code; anything else is a national
 * number of default_country (a two-letter ISO 3166 code, any case), written
 * with or without that country's trunk prefix (the leading 0 of GB, DE, FR,
 * AU, ...; the leading 1 in NANP countries).
 *
 * Returns 0 and writes the number to out (outlen >= PS_PHONE_MAXLEN), or -1
 * and points *reason (if reason is not NULL) at a static sentence saying why
 * the input is not a phone number; out is then an empty string if outlen > 0.
 * Never reads past the input's terminating NUL, never writes more than
 * outlen bytes.
 */
extern int	ps_phone_normalize(const char *in, const char *default_country,
							   char *out, size_t outlen, const char **reason);

/* whether iso (any case) is an assigned ISO 3166-1 alpha-2 country code */
extern bool ps_country_code_assigned(const char *iso);

#endif							/* PS_PHONE_H */
