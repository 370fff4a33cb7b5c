/*
 * libFuzzer harness for the phone normalizer (src/phone.c).
 *
 * Input: byte 0 picks the default country, the rest is the number.
 * Checks, besides what AddressSanitizer and UBSan catch (the input and the
 * output buffer are allocated at their exact sizes, so that one byte too
 * far is a report):
 *   - a success is E.164: "+", a non-zero digit, 7 to 15 digits in all;
 *   - a success is a fixed point: normalizing the result gives it back;
 *   - a failure leaves an empty output and a reason.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

static const char *const countries[] = {
	"US", "CA", "GB", "DE", "FR", "AU", "IN", "BR", "JP", "MX",
	"us", "gb", "XX", "", "U", "USA", "ZZ", "NZ", "IT", "ES",
};

static void
fail(const char *what, const char *in, const char *country, const char *out)
{
	fprintf(stderr, "phone property violated: %s\n  input \"%s\" country \"%s\" output \"%s\"\n",
			what, in, country, out);
	abort();
}

static int
is_e164(const char *s)
{
	size_t		n = strlen(s);

	if (n < 8 || n > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *country;
	char	   *in;
	char	   *out;
	const char *reason = NULL;

	if (size < 1)
		return 0;
	country = countries[data[0] % (sizeof(countries) / sizeof(countries[0]))];
	in = malloc(size);
	memcpy(in, data + 1, size - 1);
	in[size - 1] = '\0';
	out = malloc(PS_PHONE_MAXLEN);

	if (ps_phone_normalize(in, country, out, PS_PHONE_MAXLEN, &reason) == 0)
	{
		char	   *again = malloc(PS_PHONE_MAXLEN);

		if (!is_e164(out))
			fail("result is not E.164", in, country, out);
		if (ps_phone_normalize(out, country, again, PS_PHONE_MAXLEN, NULL) != 0 ||
			strcmp(out, again) != 0)
			fail("result is not a fixed point", in, country, out);
		free(again);
	}
	else if (out[0] != '\0' || reason == NULL)
		fail("a failure must leave an empty output and a reason", in, country, out);

	/* a too-small output buffer is refused, never overrun */
	{
		char		small[4];

		(void) ps_phone_normalize(in, country, small, sizeof(small), NULL);
	}
	free(out);
	free(in);
	return 0;
}
