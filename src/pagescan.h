/*-------------------------------------------------------------------------
 *
 * pagescan.h
 *		A streaming JSON scanner for API pages, in plain C (no PostgreSQL):
 *		bytes go in as they arrive, in chunks cut anywhere; what comes out is
 *		a compact tape of the values the query needs, record by record.
 *
 * The scanner validates the whole body as strict JSON (UTF-8 included) and
 * builds no tree.  A spec, made once per scan, names the dotted key paths
 * wanted inside a record; each is a slot.  For every record the tape holds
 * one field per wanted value present: a scalar decoded
 * (strings unescaped to UTF-8, numbers as written), an object or array as
 * its compact JSON text (white space outside strings dropped).  Records with
 * no wanted field share one mark (a repeat count), so a page of empty
 * records costs next to nothing; a record's fields cost 16 bytes each plus
 * their text.
 *
 * Memory comes from the caller's allocator, which returns NULL when it has
 * none (the scanner then stops with PS_SCAN_ERR_OOM) and frees nothing: its
 * owner frees everything at once (a memory context reset).  Nothing here
 * raises or longjmps, so the scanner may run inside a libcurl callback.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PAGESCAN_H
#define PAGESCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef void *(*PsAllocFn) (void *cxt, size_t size);

/* JSON value types on the tape */
typedef enum PsJsonType
{
	PS_JSON_NULL = 0,
	PS_JSON_FALSE,
	PS_JSON_TRUE,
	PS_JSON_NUMBER,
	PS_JSON_STRING,
	PS_JSON_OBJECT,				/* text: the compact JSON text */
	PS_JSON_ARRAY				/* text: the compact JSON text */
} PsJsonType;

/* field flags */
#define PS_FIELD_INTEGER	0x01	/* a number without fraction or exponent */
#define PS_FIELD_NUL		0x02	/* a string holding U+0000, or an object or
									 * array with such a string inside */
#define PS_FIELD_FIRST		0x04	/* the first field of an object record */

/*
 * One value of a record, or a record mark (slot PS_SLOT_RECORD).  An object
 * record with fields starts at its first field (PS_FIELD_FIRST); a mark
 * stands for records without fields (len of them in a row), or for one that
 * is not an object.
 */
typedef struct PsField
{
	uint16_t	slot;
	uint8_t		type;			/* PsJsonType; for a mark: the record's type */
	uint8_t		flags;
	uint32_t	len;			/* text bytes; for a mark: how many records */
	const char *text;			/* NUL-terminated (len excludes it) */
} PsField;

#define PS_SLOT_RECORD	0xFFFF
#define PS_MAX_SLOTS	0xFFF0

/* what a body is */
typedef enum PsScanMode
{
	PS_SCAN_LIST = 0,			/* {"<records_key>": [records], "page_info":
								 * {"total_pages": n}, ...} */
	PS_SCAN_RECORD,				/* the body is the one record */
	PS_SCAN_ELEMENTS			/* a JSON array: each element is a field of
								 * slot 0, in one record */
} PsScanMode;

/* the outcome; the messages of the parse errors are json-c's */
typedef enum PsScanError
{
	PS_SCAN_OK = 0,
	PS_SCAN_INCOMPLETE,			/* the body ended inside a value */
	PS_SCAN_ERR_DEPTH,
	PS_SCAN_ERR_UNEXPECTED,
	PS_SCAN_ERR_NULL,
	PS_SCAN_ERR_BOOL,
	PS_SCAN_ERR_NUMBER,
	PS_SCAN_ERR_ARRAY_SEP,
	PS_SCAN_ERR_KEY,
	PS_SCAN_ERR_COLON,
	PS_SCAN_ERR_OBJECT_SEP,
	PS_SCAN_ERR_STRING,
	PS_SCAN_ERR_UTF8,
	PS_SCAN_ERR_OOM
} PsScanError;

/* the body is valid JSON but not the list it should be */
typedef enum PsScanShape
{
	PS_SHAPE_OK = 0,
	PS_SHAPE_NO_KEY,			/* no records key at the top (or no object) */
	PS_SHAPE_NOT_ARRAY,			/* the records key holds no array */
	PS_SHAPE_EMPTY				/* {}: an object of no member at all */
} PsScanShape;

typedef struct PsPageSpec PsPageSpec;
typedef struct PsPageScan PsPageScan;

/* record positions on a finished tape */
typedef struct PsRecordCursor
{
	const void *block;
	uint32_t	pos;
	uint32_t	repeat;			/* records left under the current mark */
	uint8_t		mark_type;
} PsRecordCursor;

/* ---- the spec: wanted paths, made once per scan */
extern PsPageSpec *ps_spec_new(PsAllocFn alloc, void *cxt, int max_path_keys);
extern int	ps_spec_add(PsPageSpec *spec, const char *const *path, int npath);
extern int	ps_spec_nslots(const PsPageSpec *spec);

/* ---- one body */
extern PsPageScan *ps_scan_new(const PsPageSpec *spec, PsScanMode mode,
							   const char *records_key, int max_depth,
							   PsAllocFn alloc, void *cxt);
extern void ps_scan_reset(PsPageScan *s);
extern PsScanError ps_scan_feed(PsPageScan *s, const char *p, size_t n);
extern PsScanError ps_scan_finish(PsPageScan *s);
extern PsScanError ps_scan_error(const PsPageScan *s);
extern const char *ps_scan_error_desc(PsScanError e);
extern PsScanShape ps_scan_shape(const PsPageScan *s);
extern uint64_t ps_scan_nrecords(const PsPageScan *s);
extern int	ps_scan_total_pages(const PsPageScan *s);	/* -1: not given */

/* ---- reading the tape: records in order, then each record's fields */
extern void ps_scan_cursor(const PsPageScan *s, PsRecordCursor *c);

/*
 * Step to the next record; false at the end.  *type gets the record's JSON
 * type (a record that is not an object has no fields), *fields and
 * *nfields its fields.
 */
extern bool ps_scan_next_record(PsRecordCursor *c, PsJsonType *type,
								const PsField **fields, uint32_t *nfields);

/*
 * memcpy for the many short copies of a page's strings, keys and values:
 * up to 16 bytes by two fixed-size moves that may overlap (no call, and
 * one branch on the size class rather than memcpy's several), longer ones
 * by memcpy.  The two ranges may not overlap.
 */
static inline void
ps_copy(void *dst, const void *src, size_t n)
{
	unsigned char *d = (unsigned char *) dst;
	const unsigned char *s = (const unsigned char *) src;

	if (n >= 8)
	{
		uint64_t	a,
					b;

		if (n > 16)
		{
			memcpy(d, s, n);
			return;
		}
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	}
	else if (n >= 4)
	{
		uint32_t	a,
					b;

		memcpy(&a, s, 4);
		memcpy(&b, s + n - 4, 4);
		memcpy(d, &a, 4);
		memcpy(d + n - 4, &b, 4);
	}
	else if (n > 0)
	{
		/* 1 to 3 bytes: the first, the middle and the last */
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/*
 * The end of a run of plain ASCII in a JSON string (no quote, backslash,
 * control character or byte above 0x7f) from p, at most end: sixteen bytes
 * at a time where SSE2 is (every x86-64), then eight at a time while there
 * are that many.  The scanner's strings, and the compact text jsonb columns
 * are encoded from (json_conv.c).
 */
#define PS_BYTES8(c)	(UINT64_C(0x0101010101010101) * (c))
#define PS_HAS_ZERO(x)	(((x) - PS_BYTES8(0x01)) & ~(x) & PS_BYTES8(0x80))

static inline const unsigned char *
ps_ascii_run(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
	/* sixteen at a time: a signed byte below 0x20 is a control or above 0x7f */
	const __m128i quote = _mm_set1_epi8('"');
	const __m128i bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20);

	while (end - p >= 16)
	{
		__m128i		x = _mm_loadu_si128((const __m128i *) p);
		int			stop = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote),
																	   _mm_cmpeq_epi8(x, bslash)),
														  _mm_cmplt_epi8(x, space)));

		if (stop != 0)
			return p + __builtin_ctz((unsigned int) stop);
		p += 16;
	}
#endif
	while (end - p >= 8)
	{
		uint64_t	x;
		uint64_t	stop;

		memcpy(&x, p, 8);
		stop = ((x | ((x - PS_BYTES8(0x20)) & ~x)) & PS_BYTES8(0x80)) |
			PS_HAS_ZERO(x ^ PS_BYTES8('"')) | PS_HAS_ZERO(x ^ PS_BYTES8('\\'));
		if (stop != 0)
		{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			/* the lowest byte flagged is the first that stops the run */
			return p + (__builtin_ctzll(stop) >> 3);
#else
			break;
#endif
		}
		p += 8;
	}
	while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
		p++;
	return p;
}

#endif							/* PAGESCAN_H */
