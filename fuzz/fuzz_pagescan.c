/*
 * libFuzzer harness for the streaming page scanner (src/pagescan.c), plain
 * C with ASan + UBSan.
 *
 * Input: byte 0 picks the mode (a list page with records key "rows", one
 * record, an array's elements) and the depth limit, byte 1 seeds the chunk
 * splits, the rest is the response body.  The body is scanned three times:
 * whole, cut into chunks at pseudo-random places (1 to 64 bytes), and one
 * byte at a time.  Checks, besides what the sanitizers catch:
 *   - the cuts change nothing: the same outcome, and for a valid body the
 *     same records with the same fields, byte for byte;
 *   - every field's text is NUL-terminated at its length; a string holds a
 *     NUL only when flagged so, and is valid UTF-8;
 *   - an object or array field is itself valid JSON, read again whole;
 *   - the records read back are as many as counted.
 * Allocations are tracked and freed after each input, as a memory context
 * reset frees them in the extension.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pagescan.h"

typedef struct Arena
{
	void	  **blocks;
	size_t		n;
	size_t		cap;
} Arena;

static void *
arena_alloc(void *cxt, size_t size)
{
	Arena	   *a = cxt;
	void	   *p;

	if (size > ((size_t) 1 << 28))
		return NULL;			/* as an allocator out of memory would */
	if (a->n == a->cap)
	{
		a->cap = a->cap ? a->cap * 2 : 64;
		a->blocks = realloc(a->blocks, sizeof(void *) * a->cap);
		if (a->blocks == NULL)
			abort();
	}
	p = malloc(size ? size : 1);
	if (p == NULL)
		abort();
	a->blocks[a->n++] = p;
	return p;
}

static void
arena_free(Arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->blocks[i]);
	free(a->blocks);
	memset(a, 0, sizeof(Arena));
}

static void
fail(const char *what)
{
	fprintf(stderr, "page scanner property violated: %s\n", what);
	abort();
}

/* strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF */
static int
valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;)
	{
		unsigned char c = s[i];
		size_t		k;
		unsigned	lo = 0x80,
					hi = 0xBF;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			k = 1;
		else if (c >= 0xE0 && c <= 0xEF)
		{
			k = 2;
			if (c == 0xE0)
				lo = 0xA0;
			if (c == 0xED)
				hi = 0x9F;
		}
		else if (c >= 0xF0 && c <= 0xF4)
		{
			k = 3;
			if (c == 0xF0)
				lo = 0x90;
			if (c == 0xF4)
				hi = 0x8F;
		}
		else
			return 0;
		for (size_t j = 1; j <= k; j++)
		{
			if (i + j >= n)
				return 0;
			if (s[i + j] < (j == 1 ? lo : 0x80) || s[i + j] > (j == 1 ? hi : 0xBF))
				return 0;
		}
		i += k + 1;
	}
	return 1;
}

static PsPageSpec *
make_spec(Arena *a)
{
	static const char *const p_id[] = {"id"};
	static const char *const p_a[] = {"a"};
	static const char *const p_abc[] = {"a", "b", "c"};
	static const char *const p_n[] = {"n"};
	static const char *const p_tags[] = {"tags"};
	static const char *const p_can[] = {"subscriptions", "promotional", "can_send"};
	PsPageSpec *spec = ps_spec_new(arena_alloc, a, 16);

	ps_spec_add(spec, p_id, 1);
	ps_spec_add(spec, p_a, 1);
	ps_spec_add(spec, p_abc, 3);
	ps_spec_add(spec, p_n, 1);
	ps_spec_add(spec, p_tags, 1);
	ps_spec_add(spec, p_can, 3);
	ps_spec_add(spec, NULL, 0);		/* the record itself */
	if (ps_spec_add(spec, p_id, 1) != 0)
		fail("a path added twice has two slots");
	return spec;
}

/* scan body in chunks: step 0 = whole, 1 = a byte at a time, else random */
static PsPageScan *
scan(Arena *a, const PsPageSpec *spec, PsScanMode mode, int depth,
	 const uint8_t *body, size_t n, int step, uint32_t seed)
{
	PsPageScan *s = ps_scan_new(spec, mode, "rows", depth, arena_alloc, a);
	size_t		pos = 0;

	while (pos < n)
	{
		size_t		k = n - pos;

		if (step == 1)
			k = 1;
		else if (step != 0)
		{
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 64;
			if (k > n - pos)
				k = n - pos;
		}
		ps_scan_feed(s, (const char *) body + pos, k);
		pos += k;
	}
	ps_scan_finish(s);
	return s;
}

static void
check_fields(Arena *a, const PsPageSpec *spec, const PsField *f, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
	{
		if (f[i].text == NULL || f[i].text[f[i].len] != '\0')
			fail("a field's text is not NUL-terminated at its length");
		if (f[i].type == PS_JSON_STRING)
		{
			if (!(f[i].flags & PS_FIELD_NUL) && memchr(f[i].text, 0, f[i].len) != NULL)
				fail("a string holds a NUL it is not flagged for");
			if (!valid_utf8((const unsigned char *) f[i].text, f[i].len))
				fail("a string is not valid UTF-8");
		}
		if (f[i].type == PS_JSON_OBJECT || f[i].type == PS_JSON_ARRAY)
		{
			PsPageScan *again = scan(a, spec, PS_SCAN_RECORD, 1 << 20,
									 (const uint8_t *) f[i].text, f[i].len, 0, 0);

			if (ps_scan_error(again) != PS_SCAN_OK)
				fail("an object or array field is not valid JSON");
		}
	}
}

static void
same(Arena *a, const PsPageSpec *spec, PsPageScan *x, PsPageScan *y)
{
	PsRecordCursor cx,
				cy;
	PsJsonType tx,
				ty;
	const PsField *fx,
			   *fy;
	uint32_t	nx,
				ny;
	uint64_t	count = 0;

	if (ps_scan_error(x) != ps_scan_error(y))
		fail("cutting the body into chunks changed the outcome");
	if (ps_scan_error(x) != PS_SCAN_OK)
		return;
	if (ps_scan_shape(x) != ps_scan_shape(y) ||
		ps_scan_nrecords(x) != ps_scan_nrecords(y) ||
		ps_scan_total_pages(x) != ps_scan_total_pages(y))
		fail("cutting the body into chunks changed the page");
	ps_scan_cursor(x, &cx);
	ps_scan_cursor(y, &cy);
	for (;;)
	{
		int			more = ps_scan_next_record(&cx, &tx, &fx, &nx);

		if (more != ps_scan_next_record(&cy, &ty, &fy, &ny))
			fail("cutting the body into chunks changed the number of records");
		if (!more)
			break;
		count++;
		if (tx != ty || nx != ny)
			fail("cutting the body into chunks changed a record");
		for (uint32_t i = 0; i < nx; i++)
			if (fx[i].slot != fy[i].slot || fx[i].type != fy[i].type ||
				fx[i].flags != fy[i].flags || fx[i].len != fy[i].len ||
				memcmp(fx[i].text, fy[i].text, fx[i].len) != 0)
				fail("cutting the body into chunks changed a field");
		check_fields(a, spec, fx, nx);
	}
	if (count != ps_scan_nrecords(x))
		fail("the records read back are not as many as counted");
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Arena		a = {0};
	PsPageSpec *spec;
	PsScanMode	mode;
	int			depth;
	PsPageScan *whole;

	if (size < 2)
		return 0;
	mode = (PsScanMode) (data[0] % 3);
	depth = 2 + (data[0] / 3) % 64;
	spec = make_spec(&a);
	whole = scan(&a, spec, mode, depth, data + 2, size - 2, 0, 0);
	same(&a, spec, whole, scan(&a, spec, mode, depth, data + 2, size - 2, 2, data[1]));
	same(&a, spec, whole, scan(&a, spec, mode, depth, data + 2, size - 2, 1, 0));
	arena_free(&a);
	return 0;
}
