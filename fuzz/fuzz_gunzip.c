/*
 * libFuzzer harness for the gzip decoding of bodies (src/gunzip.c), plain C
 * with ASan + UBSan.
 *
 * Input: byte 0 picks the compression level and how many members (1 to 3),
 * byte 1 where the members split the data and how many times the rest is
 * repeated to make the data (1 to 64: a body larger than the first room
 * gunzip.c takes, so that the room must grow).  Checks,
 * besides what the sanitizers catch:
 *   - the data gzip'd (libdeflate's compressor) as one or more members one
 *     after the other decodes back to the data, byte for byte, and with a
 *     bound one byte short it is PS_GUNZIP_TOO_LARGE, never a wrong result;
 *   - the raw input, taken as a gzip body as a hostile server might send it,
 *     decodes or is refused without fault, never beyond the bound, and
 *     whatever a decoding returns is freed exactly once (counted);
 *   - the compressed body cut short, or with one byte changed, never
 *     decodes to something other than the data.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>

#include "gunzip.h"

static long live;				/* blocks allocated and not yet freed */

static void *
counted_alloc(void *cxt, size_t size)
{
	void	   *p;

	if (size > ((size_t) 1 << 26))
		return NULL;			/* as an allocator out of memory would */
	p = malloc(size);
	if (p != NULL)
		live++;
	return p;
}

static void
counted_free(void *cxt, void *p)
{
	live--;
	free(p);
}

static void
check(int ok)
{
	if (!ok)
		abort();
}

/* decode body with bound max; on success the output is returned (caller frees) */
static PsGunzipResult
decode(const unsigned char *body, size_t n, size_t max, char **out, size_t *len)
{
	size_t		good;
	PsGunzipResult r = ps_gunzip(body, n, max, counted_alloc, counted_free, NULL,
								 out, len, &good);

	if (r == PS_GUNZIP_OK)
		check(*len <= max);
	else
		check(*out == NULL);
	if (r == PS_GUNZIP_BAD)
		check(good <= n);
	return r;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct libdeflate_compressor *comp[13];
	unsigned char *payload;
	size_t		plen;
	size_t		rep;
	int			level;
	int			members;
	size_t		cuts[3];
	unsigned char *gz;
	size_t		gzlen = 0;
	size_t		gzcap;
	char	   *out;
	size_t		len;

	if (size < 2)
		return 0;
	level = data[0] % 13;
	members = 1 + (data[0] / 13) % 3;
	rep = 1 + data[1] % 64;
	plen = (size - 2) * rep;
	payload = malloc(plen + 1);
	check(payload != NULL);
	for (size_t i = 0; i < rep; i++)
		memcpy(payload + i * (size - 2), data + 2, size - 2);

	/* 1. hostile: the input itself as a gzip body */
	live = 0;
	if (decode(data, size, 1 << 20, &out, &len) == PS_GUNZIP_OK)
		counted_free(NULL, out);
	check(live == 0);

	/* 2. the payload as members one after the other */
	if (comp[level] == NULL && (comp[level] = libdeflate_alloc_compressor(level)) == NULL)
		abort();
	cuts[0] = 0;
	cuts[1] = members > 1 ? (plen * data[1]) / 255 : plen;
	cuts[2] = plen;
	gzcap = 3 * libdeflate_gzip_compress_bound(comp[level], plen) + 64;
	gz = malloc(gzcap);
	check(gz != NULL);
	for (int m = 0; m < members && m < 2; m++)
	{
		size_t		from = cuts[m];
		size_t		to = (m == members - 1) ? plen : cuts[m + 1];
		size_t		k = libdeflate_gzip_compress(comp[level], payload + from, to - from,
												 gz + gzlen, gzcap - gzlen);

		check(k > 0);
		gzlen += k;
	}
	if (members == 3)
	{
		/* a third member that holds nothing */
		size_t		k = libdeflate_gzip_compress(comp[level], "", 0, gz + gzlen, gzcap - gzlen);

		check(k > 0);
		gzlen += k;
	}

	live = 0;
	check(decode(gz, gzlen, plen, &out, &len) == PS_GUNZIP_OK);
	check(len == plen && memcmp(out, payload, plen) == 0);
	counted_free(NULL, out);
	if (plen > 0)
		check(decode(gz, gzlen, plen - 1, &out, &len) == PS_GUNZIP_TOO_LARGE);

	/* 3. cut short, or one byte changed: refused, or the same data */
	if (gzlen > 1)
	{
		size_t		at = data[1] % gzlen;
		PsGunzipResult r = decode(gz, at, plen + 1024, &out, &len);

		if (r == PS_GUNZIP_OK)
		{
			/* only a cut between whole members can decode */
			check(len <= plen && memcmp(out, payload, len) == 0);
			counted_free(NULL, out);
		}
		gz[at] ^= (unsigned char) (1 + data[0] % 255);
		if (decode(gz, gzlen, plen + 1024, &out, &len) == PS_GUNZIP_OK)
		{
			/* a changed byte in a header's optional field may still pass */
			check(len == plen && memcmp(out, payload, plen) == 0);
			counted_free(NULL, out);
		}
	}
	check(live == 0);
	free(gz);
	free(payload);
	return 0;
}
