/*
 * libFuzzer harness for the query-string pieces (src/querystring.c).
 *
 * Checks, besides what AddressSanitizer and UBSan catch (buffers at their
 * exact documented sizes):
 *   - ps_qs_encode emits only unreserved characters and %XX with upper-case
 *     hex, and decoding it gives the input back byte for byte;
 *   - ps_qs_like_contains accepts exactly '%literal%' patterns: the literal,
 *     escaped again and wrapped in %...%, is accepted and gives the same
 *     literal; a literal is never empty and never longer than the pattern.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "querystring.h"

static void
fail(const char *what, const char *in, const char *out)
{
	fprintf(stderr, "query-string property violated: %s\n  input \"%s\" output \"%s\"\n",
			what, in, out);
	abort();
}

static int
unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
check_encode(const char *in)
{
	size_t		n = strlen(in);
	char	   *enc = malloc(3 * n + 1);
	char	   *dec = malloc(n + 1);
	size_t		d = 0;

	ps_qs_encode(in, enc);
	for (const char *p = enc; *p; p++)
	{
		if (*p == '%')
		{
			int			hi = unhex(p[1]),
						lo = hi < 0 ? -1 : unhex(p[2]);

			if (hi < 0 || lo < 0)
				fail("bad percent escape", in, enc);
			if (d >= n)
				fail("decodes to more than the input", in, enc);
			dec[d++] = (char) (hi * 16 + lo);
			p += 2;
		}
		else if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
				 (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
		{
			if (d >= n)
				fail("decodes to more than the input", in, enc);
			dec[d++] = *p;
		}
		else
			fail("reserved character left unencoded", in, enc);
	}
	if (d != n || memcmp(dec, in, n) != 0)
		fail("does not decode to the input", in, enc);
	free(dec);
	free(enc);
}

static void
check_like(const char *pat)
{
	size_t		n = strlen(pat);
	char	   *lit = malloc(n + 1);

	if (ps_qs_like_contains(pat, lit))
	{
		size_t		ln = strlen(lit);
		char	   *again = malloc(2 * ln + 3);
		char	   *lit2 = malloc(2 * ln + 3);
		char	   *o = again;

		if (ln == 0 || ln > n - 2)
			fail("literal empty or too long", pat, lit);
		*o++ = '%';
		for (const char *p = lit; *p; p++)
		{
			if (*p == '%' || *p == '_' || *p == '\\')
				*o++ = '\\';
			*o++ = *p;
		}
		*o++ = '%';
		*o = '\0';
		if (!ps_qs_like_contains(again, lit2) || strcmp(lit, lit2) != 0)
			fail("the escaped literal does not round-trip", pat, lit);
		free(lit2);
		free(again);
	}
	free(lit);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *in = malloc(size + 1);

	memcpy(in, data, size);
	in[size] = '\0';
	check_encode(in);
	check_like(in);
	free(in);
	return 0;
}
