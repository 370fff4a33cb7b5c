/*-------------------------------------------------------------------------
 *
 * gunzip.c
 *		A gzip body decoded whole with libdeflate (see gunzip.h).
 *
 * libdeflate decodes a whole buffer several times faster than zlib's
 * streaming inflate (which libcurl would use); it needs the room for the
 * output up front, which this file sizes and grows, never past the bound
 * the caller gives.  Fuzzed by fuzz/fuzz_gunzip.c.
 *
 *-------------------------------------------------------------------------
 */
#include "gunzip.h"

#include <libdeflate.h>
#include <string.h>

#define FIRST_ROOM_MIN	8192

/* one decompressor per process: it keeps no state between calls */
static struct libdeflate_decompressor *inflater = NULL;

PsGunzipResult
ps_gunzip(const unsigned char *in, size_t n, size_t max,
		  PsGunzipAlloc alloc, PsGunzipFree free_fn, void *cxt,
		  char **out, size_t *outlen, size_t *good)
{
	const unsigned char *p = in;
	size_t		left = n;
	size_t		cap;
	size_t		len = 0;
	char	   *buf;

	*out = NULL;
	*outlen = 0;
	*good = 0;
	if (inflater == NULL && (inflater = libdeflate_alloc_decompressor()) == NULL)
		return PS_GUNZIP_OOM;
	/* ISIZE, the last member's size modulo 2^32: its last four bytes */
	cap = n >= 4 ? ((size_t) in[n - 4] | (size_t) in[n - 3] << 8 |
					(size_t) in[n - 2] << 16 | (size_t) in[n - 1] << 24) : 0;
	if (cap < FIRST_ROOM_MIN)
		cap = FIRST_ROOM_MIN;
	if (cap > max)
		cap = max;
	buf = alloc(cxt, cap > 0 ? cap : 1);
	if (buf == NULL)
		return PS_GUNZIP_OOM;
	while (left > 0)
	{
		size_t		used = 0;
		size_t		got = 0;
		enum libdeflate_result r;

		r = libdeflate_gzip_decompress_ex(inflater, p, left, buf + len, cap - len,
										  &used, &got);
		if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
		{
			char	   *bigger;

			if (cap >= max)
			{
				free_fn(cxt, buf);
				return PS_GUNZIP_TOO_LARGE;
			}
			cap = cap > max / 2 ? max : cap * 2;
			bigger = alloc(cxt, cap);
			if (bigger == NULL)
			{
				free_fn(cxt, buf);
				return PS_GUNZIP_OOM;
			}
			memcpy(bigger, buf, len);
			free_fn(cxt, buf);
			buf = bigger;
			continue;
		}
		if (r != LIBDEFLATE_SUCCESS || used == 0 || used > left)
		{
			*good = (size_t) (p - in);
			free_fn(cxt, buf);
			return PS_GUNZIP_BAD;
		}
		len += got;
		p += used;
		left -= used;
	}
	*out = buf;
	*outlen = len;
	return PS_GUNZIP_OK;
}
