/*
 * libFuzzer harness for the page-to-row conversion (the page scanner of
 * src/pagescan.c read by src/json_conv.c), which calls PostgreSQL's type
 * input functions and so runs only inside a backend.
 *
 * This file and the extension's sources are built (clang,
 * -fsanitize=fuzzer-no-link, linked with libFuzzer's no-main runtime) into
 * a test-only library that fuzz/run.sh loads into a single-user postgres
 * process: SELECT postscript_fdw_fuzz_rows('fuzz.t'::regclass, '<libFuzzer
 * arguments>') hands control to LLVMFuzzerRunDriver, which feeds each input
 * as a response body: scanned with the server's limits, then every record
 * (the body itself, or each element of an array) converted to a row of
 * foreign table fuzz.t, whose columns cover the types a user may choose.
 * A PostgreSQL ERROR is an accepted outcome (flushed, memory reset); a
 * crash, a hang or a failed assertion is a finding, and so is a jsonb
 * column (encoded from the scanner's compact text, src/json_conv.c) that
 * differs by a byte from what jsonb_in makes of the same text, and a time
 * string read into a timestamptz column that timestamptz_in refuses or
 * reads otherwise (in UTC, as the FDW reads a time without a zone), and a
 * text[] laid out otherwise than construct_md_array lays out its elements.
 * libFuzzer exits the process when the time is up.
 *
 * postscript_fdw_fuzz_query('<libFuzzer arguments>') does the same for the
 * query-string builder, ps_append_param(): byte 0 of an input picks a text
 * value, a LIKE pattern, a text[] (elements split at newlines) or a
 * timestamptz (through its input function), the rest is the value.  The
 * query string must hold only unreserved characters, '%XX', '=' and '&';
 * a text value must decode back to itself; an array's values come back
 * sorted and unique.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/memutils.h"

#include "postscript_fdw.h"

PG_MODULE_MAGIC;

extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*cb) (const uint8_t *data, size_t size));

static PsTable *fuzz_table;
static MemoryContext fuzz_cxt;
static int64 fuzz_rows;
static int64 fuzz_errors;

/*
 * Run body on one input in its own memory context; a PostgreSQL ERROR is an
 * accepted outcome (counted, flushed), anything worse is libFuzzer's.
 */
static int
guarded(void (*body) (const uint8_t *data, size_t size), const uint8_t *data, size_t size)
{
	MemoryContext old = MemoryContextSwitchTo(fuzz_cxt);

	PG_TRY();
	{
		body(data, size);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(fuzz_cxt);
		FlushErrorState();
		fuzz_errors++;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextReset(fuzz_cxt);
	return 0;
}

/* hand control to libFuzzer, with the arguments in args (space-separated) */
static void
run_driver(const char *name, text *args_text, int (*cb) (const uint8_t *data, size_t size))
{
	char	   *args = text_to_cstring(args_text);
	char	  **argv = palloc(sizeof(char *) * 64);
	int			argc = 0;

	fuzz_cxt = AllocSetContextCreate(TopMemoryContext, "fuzz input", ALLOCSET_DEFAULT_SIZES);
	argv[argc++] = (char *) name;
	for (char *tok = strtok(args, " "); tok != NULL && argc < 63; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	LLVMFuzzerRunDriver(&argc, &argv, cb);
	/* libFuzzer normally exits the process itself */
	elog(LOG, "fuzz: " INT64_FORMAT " inputs converted, " INT64_FORMAT " refused",
		 fuzz_rows, fuzz_errors);
}

/*
 * check(f, col, value) for each column converted from field f, the last of
 * its key in the record (a later duplicate key wins), and not null.
 */
static void
each_value(PsRowReader *rr, const PsField *fields, uint32 n, Datum *values,
		   bool *nulls, void (*check) (const PsField *f, PsColumn *col, Datum value))
{
	for (uint32 i = 0; i < n; i++)
	{
		const PsField *f = &fields[i];
		bool		last = true;

		for (uint32 j = i + 1; j < n; j++)
			last = last && fields[j].slot != f->slot;
		if (!last)
			continue;
		for (int k = rr->slot_first[f->slot]; k < rr->slot_first[f->slot + 1]; k++)
		{
			PsColumn   *col = rr->slot_cols[k];

			if (!nulls[col->attnum - 1])
				check(f, col, values[col->attnum - 1]);
		}
	}
}

/* the 4 hex digits at p, or -1 */
static int
hex4_at(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		int			c = (unsigned char) p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * JSON text with each lone surrogate escape written as \ufffd: what the
 * FDW reads it as (jsonb_in refuses it)
 */
static char *
lone_surrogates_replaced(const char *text)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *p = text; *p; p++)
	{
		int			c;

		if (*p != '\\')
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		if (p[1] != 'u' || (c = hex4_at(p + 2)) < 0 || c < 0xD800 || c > 0xDFFF)
		{
			/* another escape: copied whole, so its second byte is not read as one */
			appendStringInfoChar(&buf, *p++);
			appendStringInfoChar(&buf, *p);
			continue;
		}
		if (c < 0xDC00 && p[6] == '\\' && p[7] == 'u' && hex4_at(p + 8) >= 0xDC00 &&
			hex4_at(p + 8) <= 0xDFFF)
		{
			appendBinaryStringInfo(&buf, p, 12);
			p += 11;
			continue;
		}
		appendStringInfoString(&buf, "\\ufffd");
		p += 5;
	}
	return buf.data;
}

/*
 * A jsonb column built from an object or array must be, byte for byte, the
 * jsonb jsonb_in makes of that value's text (a lone surrogate escape read as
 * U+FFFD, as the FDW reads it); jsonb_in refusing what the encoder took is a
 * finding too.
 */
static void
check_jsonb(const PsField *f, PsColumn *col, Datum value)
{
	Jsonb	   *ours;
	Jsonb	   *theirs = NULL;

	if (col->conv != PS_CONV_JSONB || (f->type != PS_JSON_OBJECT && f->type != PS_JSON_ARRAY))
		return;
	ours = DatumGetJsonbP(value);
	PG_TRY();
	{
		theirs = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
													CStringGetDatum(lone_surrogates_replaced(f->text))));
	}
	PG_CATCH();
	{
		elog(PANIC, "fuzz: jsonb_in refuses a value the jsonb encoder took: %s", f->text);
	}
	PG_END_TRY();
	if (VARSIZE(ours) != VARSIZE(theirs) ||
		memcmp(VARDATA(ours), VARDATA(theirs), VARSIZE(ours) - VARHDRSZ) != 0)
		elog(PANIC, "fuzz: the jsonb encoder made %s (%u bytes) of %s, jsonb_in %s (%u bytes)",
			 DatumGetCString(DirectFunctionCall1(jsonb_out, JsonbPGetDatum(ours))),
			 (unsigned) VARSIZE(ours), f->text,
			 DatumGetCString(DirectFunctionCall1(jsonb_out, JsonbPGetDatum(theirs))),
			 (unsigned) VARSIZE(theirs));
}

/*
 * A text[] is, byte for byte, the array construct_md_array makes of its
 * elements (the FDW lays out a plain one itself).
 */
static void
check_text_array(const PsField *f, PsColumn *col, Datum value)
{
	ArrayType  *ours;
	ArrayType  *theirs;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	int			lb = 1;

	if (col->typid != TEXTARRAYOID)
		return;
	ours = DatumGetArrayTypeP(value);
	deconstruct_array(ours, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	theirs = n == 0 ? construct_empty_array(TEXTOID) :
		construct_md_array(elems, enulls, 1, &n, &lb, TEXTOID, -1, false, TYPALIGN_INT);
	if (VARSIZE(ours) != VARSIZE(theirs) || memcmp(ours, theirs, VARSIZE(ours)) != 0)
		elog(PANIC, "fuzz: the text[] read from %s (%u bytes) is not laid out as construct_md_array lays it (%u bytes)",
			 f->text, (unsigned) VARSIZE(ours), (unsigned) VARSIZE(theirs));
}

/*
 * A string read into a timestamptz column is the time timestamptz_in reads
 * (session time zone UTC); ISO 8601's decimal comma, which the FDW takes
 * and timestamptz_in does not, is given to it as a point.
 */
static void
check_time(const PsField *f, PsColumn *col, Datum value)
{
	char	   *text;
	char	   *comma;
	TimestampTz theirs = 0;

	if (col->typid != TIMESTAMPTZOID || f->type != PS_JSON_STRING)
		return;
	text = pstrdup(f->text);
	if ((comma = strchr(text, ',')) != NULL)
		*comma = '.';
	PG_TRY();
	{
		theirs = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
														 ObjectIdGetDatum(InvalidOid),
														 Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		elog(PANIC, "fuzz: timestamptz_in refuses a time the FDW read: %s", f->text);
	}
	PG_END_TRY();
	if (theirs != DatumGetTimestampTz(value))
		elog(PANIC, "fuzz: the FDW read %s as " INT64_FORMAT ", timestamptz_in as " INT64_FORMAT,
			 f->text, (int64) DatumGetTimestampTz(value), (int64) theirs);
}

/*
 * A body as the scan path reads it: an array is the records of a list page
 * (wrapped as {"rows": ...}), anything else is one record; then every record
 * converted to a row of fuzz.t.
 */
static void
convert_rows(const uint8_t *data, size_t size)
{
	Datum	   *values = palloc(sizeof(Datum) * fuzz_table->natts);
	bool	   *nulls = palloc(sizeof(bool) * fuzz_table->natts);
	/* every column: the whole row */
	PsRowReader *rr = ps_row_reader(fuzz_table,
									bms_make_singleton(0 - FirstLowInvalidHeapAttributeNumber));
	bool		list = size > 0 && data[0] == '[';
	PsPageScan *page = ps_page_new(rr, list ? PS_SCAN_LIST : PS_SCAN_RECORD,
								   list ? "rows" : NULL, 64);
	PsRecordCursor cur;
	PsJsonType	type;
	const PsField *fields;
	uint32		n;

	if (list)
		ps_scan_feed(page, "{\"rows\": ", 9);
	ps_scan_feed(page, (const char *) data, size);
	if (list)
		ps_scan_feed(page, "}", 1);
	ps_page_finish(page, (int64) size, "fuzz", "GET", "/fuzz");
	ps_scan_cursor(page, &cur);
	while (ps_scan_next_record(&cur, &type, &fields, &n))
	{
		ps_row_values(rr, type, fields, n, values, nulls);
		each_value(rr, fields, n, values, nulls, check_jsonb);
		each_value(rr, fields, n, values, nulls, check_time);
		each_value(rr, fields, n, values, nulls, check_text_array);
	}
	fuzz_rows++;
}

static int
rows_input(const uint8_t *data, size_t size)
{
	return guarded(convert_rows, data, size);
}

PG_FUNCTION_INFO_V1(postscript_fdw_fuzz_rows);

Datum
postscript_fdw_fuzz_rows(PG_FUNCTION_ARGS)
{
	fuzz_table = ps_get_table(PG_GETARG_OID(0));
	SetConfigOption("TimeZone", "UTC", PGC_USERSET, PGC_S_SESSION);
	/* a reader that converts no column would make this fuzzer blind */
	{
		PsRowReader *rr = ps_row_reader(fuzz_table,
										bms_make_singleton(0 - FirstLowInvalidHeapAttributeNumber));

		if (rr->slot_first[rr->nslots] != fuzz_table->ncolumns)
			elog(PANIC, "fuzz: the row reader converts %d of the %d columns",
				 rr->slot_first[rr->nslots], fuzz_table->ncolumns);
	}
	run_driver("postscript_fdw_fuzz_rows", PG_GETARG_TEXT_PP(1), rows_input);
	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- query strings */

static int
unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* decode one percent-encoded value; abort on anything but the allowed alphabet */
static char *
decode_value(const char *v, size_t n)
{
	char	   *out = palloc(n + 1);
	size_t		o = 0;

	for (size_t i = 0; i < n; i++)
	{
		char		c = v[i];

		if (c == '%')
		{
			if (i + 2 >= n)
				abort();		/* a cut-off escape */
			if (unhex(v[i + 1]) < 0 || unhex(v[i + 2]) < 0)
				abort();
			out[o++] = (char) (unhex(v[i + 1]) * 16 + unhex(v[i + 2]));
			i += 2;
		}
		else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~')
			out[o++] = c;
		else
			abort();			/* a reserved character left unencoded */
	}
	out[o] = '\0';
	return out;
}

/* the values of parameter name in qs, decoded, in order */
static List *
values_of(const char *qs, const char *name)
{
	List	   *vals = NIL;
	size_t		nlen = strlen(name);
	const char *p = qs;

	while (*p)
	{
		const char *amp = strchr(p, '&');
		size_t		len = amp ? (size_t) (amp - p) : strlen(p);

		if (len <= nlen || strncmp(p, name, nlen) != 0 || p[nlen] != '=')
			abort();			/* only name=value pairs, only this name */
		vals = lappend(vals, decode_value(p + nlen + 1, len - nlen - 1));
		p += len + (amp ? 1 : 0);
		if (amp && *p == '\0')
			abort();			/* a trailing & */
	}
	return vals;
}

static void
build_query(const uint8_t *data, size_t size)
{
	int			kind = data[0] % 4;
	char	   *value = pnstrdup((const char *) data + 1, size - 1);
	StringInfoData qs;

	/* the value as the database has it: valid in the server encoding */
	if (strlen(value) == size - 1 &&
		pg_verifymbstr(value, (int) strlen(value), true))
	{
		initStringInfo(&qs);
		if (kind == 0)
		{
			if (ps_append_param(&qs, "email__eq", CStringGetTextDatum(value), false,
								TEXTOID, PS_PARAM_SCALAR))
			{
				List	   *vals = values_of(qs.data, "email__eq");

				if (list_length(vals) != 1 || strcmp(linitial(vals), value) != 0)
					abort();	/* the value did not come back */
			}
			else
				abort();	/* a non-NULL scalar is never unsatisfiable */
		}
		else if (kind == 1)
		{
			(void) ps_append_param(&qs, "email__contains", CStringGetTextDatum(value),
								   false, TEXTOID, PS_PARAM_LIKE);
			(void) values_of(qs.data, "email__contains");
		}
		else if (kind == 2)
		{
			List	   *elems = NIL;
			Datum	   *d;
			int			n = 0;
			ListCell   *lc;
			char	   *prev = NULL;

			for (char *t = strtok(value, "\n"); t; t = strtok(NULL, "\n"))
				elems = lappend(elems, t);
			d = palloc(sizeof(Datum) * Max(list_length(elems), 1));
			foreach(lc, elems)
				d[n++] = CStringGetTextDatum(lfirst(lc));
			if (ps_append_param(&qs, "email__in",
								PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT)),
								false, 0, PS_PARAM_ARRAY))
			{
				foreach(lc, values_of(qs.data, "email__in"))
				{
					if (prev && strcmp(prev, lfirst(lc)) >= 0)
						abort();	/* not sorted and unique */
					prev = lfirst(lc);
				}
			}
			else if (n > 0)
				abort();	/* non-NULL elements are never unsatisfiable */
		}
		else
		{
			Datum		ts = DirectFunctionCall3(timestamptz_in, CStringGetDatum(value),
												 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));

			(void) ps_append_param(&qs, "created_at__gte", ts, false, TIMESTAMPTZOID,
								   PS_PARAM_SCALAR);
			if (qs.len > 0)
				(void) values_of(qs.data, "created_at__gte");
		}
		fuzz_rows++;
	}
}

static int
query_input(const uint8_t *data, size_t size)
{
	return size < 1 ? 0 : guarded(build_query, data, size);
}

PG_FUNCTION_INFO_V1(postscript_fdw_fuzz_query);

Datum
postscript_fdw_fuzz_query(PG_FUNCTION_ARGS)
{
	run_driver("postscript_fdw_fuzz_query", PG_GETARG_TEXT_PP(0), query_input);
	PG_RETURN_VOID();
}
