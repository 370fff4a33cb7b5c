/*-------------------------------------------------------------------------
 *
 * querystring.c
 *		Percent-encoding of query-string values, and the literal of a
 *		LIKE '%...%' pattern that can become a __contains filter.
 *
 * Plain C with no PostgreSQL dependency: fuzz/fuzz_querystring.c builds
 * it on its own.  The callers (deparse.c, http.c) allocate the output.
 *
 *-------------------------------------------------------------------------
 */
#include "querystring.h"

#include <string.h>

char *
ps_qs_encode(const char *s, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *o = out;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
			*p == '.' || *p == '~')
			*o++ = (char) *p;
		else
		{
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int
ps_qs_like_contains(const char *pat, char *out)
{
	size_t		len = strlen(pat);
	char	   *o = out;

	/* '%%' filters nothing: not worth a filter */
	if (len < 3 || pat[0] != '%' || pat[len - 1] != '%')
		return 0;
	for (size_t i = 1; i < len - 1; i++)
	{
		if (pat[i] == '%' || pat[i] == '_')
			return 0;
		if (pat[i] == '\\')
		{
			/* an escape of the closing % would make it a literal % */
			if (++i >= len - 1)
				return 0;
		}
		*o++ = pat[i];
	}
	*o = '\0';
	return 1;
}
