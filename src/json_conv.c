/*-------------------------------------------------------------------------
 *
 * json_conv.c
 *		Values of a page (src/pagescan.c) to PostgreSQL Datums, and Datums
 *		to JSON (json-c) for writes.
 *
 * A row reader, made once per scan, maps the JSON paths of the columns a
 * query reads to the scanner's slots; a record then comes as the fields
 * present, each converted straight from its bytes: strings into text,
 * numbers, booleans and ISO 8601 times parsed in place, objects and arrays
 * (kept as compact JSON text) through jsonb, json or an array.  Any other
 * column type works through the type's input function on the value's text.
 * JSON null and missing keys are NULL.  A value that does not fit its
 * column is an error whose context names the table, column, row id and
 * value; nothing is truncated silently.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "postscript_fdw.h"

/* ---------------------------------------------------------------- set-up */

static PsConvKind
conv_for_type(Oid typid, int32 typmod)
{
	switch (typid)
	{
		case TEXTOID:
			return PS_CONV_TEXT;
		case VARCHAROID:
			return typmod < 0 ? PS_CONV_TEXT : PS_CONV_GENERIC;
		case INT2OID:
			return PS_CONV_INT2;
		case INT4OID:
			return PS_CONV_INT4;
		case INT8OID:
			return PS_CONV_INT8;
		case FLOAT8OID:
			return PS_CONV_FLOAT8;
		case NUMERICOID:
			return typmod < 0 ? PS_CONV_NUMERIC : PS_CONV_GENERIC;
		case BOOLOID:
			return PS_CONV_BOOL;
		case TIMESTAMPTZOID:
			return PS_CONV_TIMESTAMPTZ;
		case TIMESTAMPOID:
			return PS_CONV_TIMESTAMP;
		case DATEOID:
			return PS_CONV_DATE;
		case JSONBOID:
			return PS_CONV_JSONB;
		case JSONOID:
			return PS_CONV_JSON;
		default:
			return PS_CONV_GENERIC;
	}
}

/*
 * How a value of type typid (typmod) converts: by the type under any
 * domain, the domain's constraints checked after (the generic path's
 * input function, domain_in, checks them itself).
 */
static void
prepare_type(PsColumn *col, Oid typid, int32 typmod)
{
	Oid			infunc;
	Oid			basetype;
	Oid			elemtype;

	col->basetypmod = typmod;
	basetype = getBaseTypeAndTypmod(typid, &col->basetypmod);
	col->domain = basetype != typid ? typid : InvalidOid;
	col->domain_extra = NULL;
	col->domain_cxt = CurrentMemoryContext;
	getTypeInputInfo(typid, &infunc, &col->ioparam);
	fmgr_info(infunc, &col->infunc);
	col->conv = conv_for_type(basetype, col->basetypmod);

	elemtype = get_element_type(basetype);
	if (OidIsValid(elemtype) && basetype != INT2VECTOROID &&
		basetype != OIDVECTOROID)
	{
		/* an element: converted as a value of its own type (the typmod is
		 * the elements') */
		col->conv = PS_CONV_ARRAY;
		col->elemtype = elemtype;
		col->elem = palloc0(sizeof(PsColumn));
		col->elem->name = col->name;
		col->elem->typmod = col->basetypmod;
		prepare_type(col->elem, elemtype, col->basetypmod);
		get_typlenbyvalalign(elemtype, &col->elem_len, &col->elem_byval,
							 &col->elem_align);
	}
}

void
ps_column_prepare(PsColumn *col)
{
	/* split the dotted path */
	if (strcmp(col->field, "$") == 0)
	{
		col->npath = 0;
		col->path = NULL;
	}
	else
	{
		char	   *copy = pstrdup(col->field);
		int			n = 1;

		for (char *p = copy; *p; p++)
			if (*p == '.')
				n++;
		col->path = palloc(sizeof(char *) * n);
		col->npath = 0;
		for (char *tok = strtok(copy, "."); tok; tok = strtok(NULL, "."))
			col->path[col->npath++] = tok;
	}
	prepare_type(col, col->typid, col->typmod);
}


/* ---------------------------------------------------------------- the row reader */

/* a jsonb column of one top-level key: copied out of raw's value beside it */
static inline bool
jsonb_of_one_key(const PsColumn *col)
{
	return col->npath == 1 && col->conv == PS_CONV_JSONB && !OidIsValid(col->domain);
}

/*
 * The reader of a table's records for the columns in attrs_used (offset by
 * FirstLowInvalidHeapAttributeNumber; a whole-row reference: all; none:
 * the records are only counted), in the current memory context.  The
 * record's "id" is read too when a column is, for the error context.
 */
PsRowReader *
ps_row_reader(PsTable *t, const Bitmapset *attrs_used)
{
	PsRowReader *rr = palloc0(sizeof(PsRowReader));
	bool		all = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used);
	static const char *const id_path[] = {"id"};
	int			nkeys = 1;
	int		   *col_slot = palloc(sizeof(int) * Max(t->ncolumns, 1));
	int			nused = 0;

	rr->table = t;
	rr->utf8 = (GetDatabaseEncoding() == PG_UTF8);
	rr->cxt = CurrentMemoryContext;
	for (int i = 0; i < t->ncolumns; i++)
		nkeys += t->columns[i].npath;
	rr->spec = ps_spec_new(ps_alloc, CurrentMemoryContext, nkeys);
	if (rr->spec == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	for (int i = 0; i < t->ncolumns; i++)
	{
		PsColumn   *col = &t->columns[i];

		col_slot[i] = -1;
		if (!all && !bms_is_member(col->attnum - FirstLowInvalidHeapAttributeNumber,
								   attrs_used))
			continue;
		col_slot[i] = ps_spec_add(rr->spec, (const char *const *) col->path, col->npath);
		Assert(col_slot[i] >= 0);
		nused++;
	}
	/* the id only names a row in an error: none without a column to convert */
	rr->id_slot = nused > 0 ? ps_spec_add(rr->spec, id_path, 1) : -1;
	rr->nslots = ps_spec_nslots(rr->spec);

	/* each slot's columns, in one array */
	rr->slot_first = palloc0(sizeof(int) * (rr->nslots + 1));
	rr->slot_cols = palloc(sizeof(PsColumn *) * Max(nused, 1));
	for (int i = 0; i < t->ncolumns; i++)
		if (col_slot[i] >= 0)
			rr->slot_first[col_slot[i] + 1]++;
	for (int s = 0; s < rr->nslots; s++)
		rr->slot_first[s + 1] += rr->slot_first[s];
	{
		int		   *fill = palloc0(sizeof(int) * rr->nslots);

		for (int i = 0; i < t->ncolumns; i++)
			if (col_slot[i] >= 0)
				rr->slot_cols[rr->slot_first[col_slot[i]] + fill[col_slot[i]]++] = &t->columns[i];
		pfree(fill);
	}

	/*
	 * A jsonb column of the whole record (raw) holds every jsonb column of
	 * one key (properties, data): those are copied out of it, not encoded
	 * again
	 */
	for (int i = 0; i < t->ncolumns && rr->whole_jsonb == NULL; i++)
		if (col_slot[i] >= 0 && t->columns[i].npath == 0 &&
			t->columns[i].conv == PS_CONV_JSONB && !OidIsValid(t->columns[i].domain))
		{
			rr->whole_jsonb = &t->columns[i];
			rr->whole_slot = col_slot[i];
		}
	if (rr->whole_jsonb != NULL)
	{
		bool		any = false;

		for (int i = 0; i < t->ncolumns; i++)
			any |= col_slot[i] >= 0 && jsonb_of_one_key(&t->columns[i]);
		if (!any)
			rr->whole_jsonb = NULL;
	}
	pfree(col_slot);
	return rr;
}

/* ---------------------------------------------------------------- error context */

/* what a row conversion is at, for the error context; one per row */
typedef struct ConvState
{
	PsRowReader *rr;
	const PsField *fields;
	uint32		nfields;
	PsColumn   *column;
	const PsField *value;
} ConvState;

/* a value as JSON text, for messages (a string may hold NUL) */
static char *
field_display(const PsField *f)
{
	StringInfoData buf;

	switch ((PsJsonType) f->type)
	{
		case PS_JSON_STRING:
			initStringInfo(&buf);
			appendStringInfoChar(&buf, '"');
			for (uint32 i = 0; i < f->len; i++)
			{
				unsigned char c = (unsigned char) f->text[i];

				if (c == '"' || c == '\\')
					appendStringInfo(&buf, "\\%c", c);
				else if (c < 0x20)
					appendStringInfo(&buf, "\\u%04x", c);
				else
					appendStringInfoChar(&buf, (char) c);
			}
			appendStringInfoChar(&buf, '"');
			return buf.data;
		case PS_JSON_TRUE:
			return "true";
		case PS_JSON_FALSE:
			return "false";
		case PS_JSON_NULL:
			return "null";
		default:
			return (char *) f->text;
	}
}

static void
conv_error_callback(void *arg)
{
	ConvState  *cs = (ConvState *) arg;
	const char *idstr = "?";
	const char *val = "";

	if (cs->column == NULL)
		return;
	for (uint32 i = 0; i < cs->nfields; i++)
		if (cs->fields[i].slot == cs->rr->id_slot &&
			cs->fields[i].type != PS_JSON_NULL)
			idstr = cs->fields[i].text;
	if (cs->value)
		val = field_display(cs->value);
	errcontext("column \"%s\" of foreign table \"%s\", row id %s, value %.100s%s",
			   cs->column->name, cs->rr->table->relname,
			   idstr, val, strlen(val) > 100 ? "..." : "");
}

static void
conv_error(const char *fmt, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg(fmt, what)));
}

/* a number beyond its column's type: 22003, as the type's input function */
static void
range_error(const char *type)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("Postscript value is out of range for type %s", type)));
}

/* ---------------------------------------------------------------- scalars */

static void
nul_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
			 errmsg("Postscript value contains a NUL character (\\u0000)")));
}

/*
 * A value's text in the server encoding, as the type input function gets
 * it: a string unescaped (no NUL allowed), a number as the API wrote it,
 * an object or array as compact JSON.  *lenp gets its length.
 */
static char *
field_cstring(PsRowReader *rr, const PsField *f, int *lenp)
{
	char	   *res;
	int			len = (int) f->len;

	switch ((PsJsonType) f->type)
	{
		case PS_JSON_TRUE:
			*lenp = 4;
			return "true";
		case PS_JSON_FALSE:
			*lenp = 5;
			return "false";
		case PS_JSON_NUMBER:
			*lenp = len;
			return (char *) f->text;
		case PS_JSON_STRING:
			if (f->flags & PS_FIELD_NUL)
				nul_error();
			break;
		default:
			break;
	}
	/* the scanner validated UTF-8: convert only for another encoding */
	if (rr->utf8)
	{
		*lenp = len;
		return (char *) f->text;
	}
	res = pg_any_to_server(f->text, len, PG_UTF8);
	*lenp = (res == f->text) ? len : (int) strlen(res);
	return res;
}

/* an integer as the API wrote it: -?digits; false if beyond 64 bits */
static bool
field_int64(const PsField *f, int64 *result)
{
	const char *p = f->text;
	bool		neg = (*p == '-');
	uint64		v = 0;

	Assert(f->type == PS_JSON_NUMBER && (f->flags & PS_FIELD_INTEGER));
	if (neg)
		p++;
	for (; *p; p++)
	{
		if (v > (PG_UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64) (*p - '0');
	}
	if (neg ? v > (uint64) PG_INT64_MAX + 1 : v > (uint64) PG_INT64_MAX)
		return false;
	*result = neg ? (int64) (0 - v) : (int64) v;
	return true;
}

static int64
field_int_in(const PsField *f, int64 min, int64 max, const char *type)
{
	int64		i;

	if (!field_int64(f, &i) || i < min || i > max)
		range_error(type);
	return i;
}

/* a time the API sent: ISO 8601, or seconds since the Unix epoch */
static Datum
convert_timestamp(PsRowReader *rr, const PsField *f, PsColumn *col)
{
	int64		ts;
	Datum		d;

	if (f->type == PS_JSON_STRING)
	{
		if (!ps_parse_iso8601(f->text, f->len, &ts))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
					 errmsg("Postscript value for a timestamp column is not an ISO 8601 date-time"),
					 errhint("The API sends times as YYYY-MM-DD[THH:MM[:SS[.fraction]]][Z|+HH:MM|-HH:MM].")));
		d = Int64GetDatum(ts);
	}
	else if (f->type == PS_JSON_NUMBER && (f->flags & PS_FIELD_INTEGER))
		d = DirectFunctionCall1(float8_timestamptz,
								Float8GetDatum((double) field_int_in(f, PG_INT64_MIN, PG_INT64_MAX,
																	 "bigint")));
	else if (f->type == PS_JSON_NUMBER)
		d = DirectFunctionCall1(float8_timestamptz, Float8GetDatum(strtod(f->text, NULL)));
	else
	{
		conv_error("Postscript value for a timestamp column is not a string%s", "");
		return (Datum) 0;
	}
	/* a timestamp without zone holds the UTC wall-clock time */
	if (col->basetypmod >= 0)
		d = col->conv == PS_CONV_TIMESTAMP
			? DirectFunctionCall2(timestamp_scale, d, Int32GetDatum(col->basetypmod))
			: DirectFunctionCall2(timestamptz_scale, d, Int32GetDatum(col->basetypmod));
	return d;
}

/* a date: ISO 8601, the date as written */
static Datum
convert_date(const PsField *f)
{
	int64		ts;
	const char *p = f->text;

	if (f->type != PS_JSON_STRING || !ps_parse_iso8601(p, f->len, &ts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_DATETIME_FORMAT),
				 errmsg("Postscript value for a date column is not an ISO 8601 date"),
				 errhint("The API sends dates as YYYY-MM-DD.")));
	/* validated: YYYY-MM-DD leads */
	return DateADTGetDatum(date2j(atoi(p), atoi(p + 5), atoi(p + 8)) - POSTGRES_EPOCH_JDATE);
}

/* ---------------------------------------------------------------- json, jsonb, arrays */

/*
 * jsonb straight from the compact JSON text the scanner keeps for an object
 * or an array, without a JsonbValue tree in between.  That text is valid
 * JSON without white space, so it is encoded as it is read, in jsonb's
 * layout (utils/jsonb.h): a container is its header word, one JEntry per
 * child (an object's keys first, in jsonb's order: length, then bytes; of
 * duplicate keys the last written wins), then the children's data; numerics
 * and containers start 4-byte aligned, the padding counted in their length;
 * every JB_OFFSET_STRIDE'th JEntry holds an end offset instead of a length.
 * The text is read once: a container's children are encoded as they come
 * and moved behind its header once their order is known.  Strings are
 * copied as they are unless they hold escapes, and integers are written in
 * numeric's format without numeric_in or a palloc.  A lone surrogate escape
 * becomes U+FFFD, as in a text column.  A string jsonb_in rejects (a raw
 * control character) stops the encoding: jsonb_in then reports it, as it
 * always did.
 */
/*
 * A container's child: an object's key, unescaped, and the value's data,
 * encoded where the container's own data will go, to be moved into place.
 */
typedef struct JbMember
{
	const char *key;
	int			keylen;
	int			order;			/* its place in the text */
	JEntry		type;			/* the value's JEntry type bits */
	int			off;			/* its data, from the container's start */
	int			len;			/* its length, without alignment padding */
} JbMember;

/*
 * What the encoder keeps from row to row (in the reader's context): the
 * open containers' children and their values' data, each container's
 * above its parent's, so a row's jsonb allocates nothing but itself.
 */
typedef struct JbStacks
{
	JbMember   *members;
	int			nmembers;
	int			maxmembers;
	StringInfoData data;
} JbStacks;

/*
 * Where the members of a record's own object landed in its jsonb: a jsonb
 * column of one key (properties) is then a copy of its member's bytes, a
 * container being the same bytes nested or at the root (as jsonb's own
 * -> operator copies one out).
 */
typedef struct JbRootMember
{
	const char *key;
	int			keylen;
	JEntry		type;			/* JEntry type bits */
	int			off;			/* the value's data in the datum */
	int			len;
} JbRootMember;

typedef struct JbRoot
{
	const char *datum;
	int			n;
	JbRootMember *m;
} JbRoot;

typedef struct JbEncoder
{
	PsRowReader *rr;
	StringInfoData buf;			/* the jsonb datum, its varlena header first */
	JbStacks   *st;
	JbRoot	   *root;			/* not NULL: record the outermost object's
								 * members there */
} JbEncoder;

/* a child on top of the members stack */
static JbMember *
jb_push_member(JbEncoder *e)
{
	JbStacks   *st = e->st;

	if (st->nmembers == st->maxmembers)
	{
		st->maxmembers *= 2;
		st->members = repalloc_huge(st->members, sizeof(JbMember) * st->maxmembers);
	}
	return &st->members[st->nmembers++];
}

/*
 * jsonb's key order: shorter first, then bytewise; later duplicates first.
 * Equal keys set *dups: a sort compares every two members that end up next
 * to each other (else it could not tell their order), so after one, *dups
 * says whether any key came twice.
 */
static inline int
member_cmp(const JbMember *a, const JbMember *b, bool *dups)
{
	int			r;

	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	r = memcmp(a->key, b->key, a->keylen);
	if (r != 0)
		return r;
	*dups = true;
	return a->order > b->order ? -1 : a->order < b->order ? 1 : 0;
}

#define ST_SORT sort_jb_members
#define ST_ELEMENT_TYPE JbMember
#define ST_COMPARE(a, b, dups) member_cmp(a, b, dups)
#define ST_COMPARE_ARG_TYPE bool
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

static inline bool
same_key(const JbMember *a, const JbMember *b)
{
	return a->keylen == b->keylen && memcmp(a->key, b->key, a->keylen) == 0;
}

static bool jb_value(JbEncoder *e, const char **pp, const char *end, JEntry *entry);

/* the 4 hex digits of a \u escape (the scanner checked them) */
static pg_wchar
hex4(const char *p)
{
	pg_wchar	c = 0;

	for (int i = 0; i < 4; i++)
		c = (c << 4) | (pg_wchar) (p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
	return c;
}

/*
 * The end of a string's run of plain bytes (the quote or backslash after
 * it); NULL at a raw control character.  The string ends before the text
 * does (the scanner checked it), so no bound is needed but the text's end.
 */
static inline const char *
string_run(const char *p, const char *end)
{
	for (;;)
	{
		p = (const char *) ps_ascii_run((const unsigned char *) p,
										(const unsigned char *) end);
		Assert(p < end);
		if (*p == '"' || *p == '\\')
			return p;
		if ((unsigned char) *p < 0x20)
			return NULL;
		p++;					/* a byte of a UTF-8 sequence */
	}
}

/*
 * The string at *pp (its opening quote), unescaped into *s and *len, in
 * the server encoding; *pp moves past it.  False: jsonb_in would refuse it.
 */
static bool
jb_string(JbEncoder *e, const char **pp, const char *end, const char **s, int *len)
{
	const char *start = *pp + 1;
	const char *p = string_run(start, end);
	StringInfoData buf;

	if (p == NULL)
		return false;
	if (*p == '"')
	{
		*s = start;
		*len = (int) (p - start);
	}
	else
	{
		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, start, (int) (p - start));
		while (*p != '"')
		{
			const char *run = p;
			pg_wchar	c;
			unsigned char utf8[4];

			if ((p = string_run(run, end)) == NULL)
				return false;
			appendBinaryStringInfo(&buf, run, (int) (p - run));
			if (*p == '"')
				break;
			p++;				/* the backslash; the scanner checked what follows */
			c = (unsigned char) *p++;
			if (c != 'u')
			{
				/* '"', '\\' and '/' stand for themselves */
				appendStringInfoChar(&buf, c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' :
									 c == 'r' ? '\r' : c == 't' ? '\t' : (char) c);
				continue;
			}
			c = hex4(p);
			p += 4;
			if (is_utf16_surrogate_first(c) && p[0] == '\\' && p[1] == 'u' &&
				is_utf16_surrogate_second(hex4(p + 2)))
			{
				c = surrogate_pair_to_codepoint(c, hex4(p + 2));
				p += 6;
			}
			else if (is_utf16_surrogate_first(c) || is_utf16_surrogate_second(c))
				c = 0xFFFD;		/* alone: as the page scanner reads it */
			/* no NUL here: the scanner flagged it, and the caller refused */
			Assert(c != 0);
			appendBinaryStringInfo(&buf, (char *) utf8,
								   pg_utf_mblen(unicode_to_utf8(c, utf8)));
		}
		*s = buf.data;
		*len = buf.len;
	}
	*pp = p + 1;
	if (!e->rr->utf8)
	{
		char	   *conv = pg_any_to_server(*s, *len, PG_UTF8);

		if (conv != *s)
		{
			*s = conv;
			*len = (int) strlen(conv);
		}
	}
	return true;
}

/* room for len more bytes in the jsonb */
static inline void
jb_reserve(JbEncoder *e, int len)
{
	if (e->buf.maxlen - e->buf.len <= len)
		enlargeStringInfo(&e->buf, len);
}

/* append len bytes to the jsonb */
static inline void
jb_append(JbEncoder *e, const void *data, int len)
{
	jb_reserve(e, len);
	ps_copy(e->buf.data + e->buf.len, data, len);
	e->buf.len += len;
}

/* pad the data to a 4-byte boundary; how many bytes that took */
static int
jb_pad(JbEncoder *e)
{
	int			pad = INTALIGN(e->buf.len) - e->buf.len;

	jb_reserve(e, pad);
	for (int i = 0; i < pad; i++)
		e->buf.data[e->buf.len++] = '\0';
	return pad;
}

static void
jb_too_large(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("total size of jsonb %s elements exceeds the maximum of %u bytes",
					what, JENTRY_OFFLENMASK)));
}

/* a key's or string value's JEntry, within what a JEntry can hold */
static JEntry
jb_string_entry(int len)
{
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string"),
				 errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						   JENTRY_OFFLENMASK)));
	return JENTRY_ISSTRING | (uint32) len;
}

/*
 * One child's data is in: its JEntry goes to slot i of the container whose
 * JEntries start at `entries` (an offset into the buffer).
 */
static void
jb_entry(JbEncoder *e, int entries, int i, JEntry meta, uint32 *totallen,
		 const char *what)
{
	*totallen += JBE_OFFLENFLD(meta);
	if (*totallen > JENTRY_OFFLENMASK)
		jb_too_large(what);
	if (i % JB_OFFSET_STRIDE == 0)
		meta = (meta & JENTRY_TYPEMASK) | *totallen | JENTRY_HAS_OFF;
	memcpy(e->buf.data + entries + sizeof(JEntry) * i, &meta, sizeof(JEntry));
}

/*
 * The object or array at *pp; *pp moves past it.  Its children are read
 * once: each value is encoded where it comes, after the container's start,
 * and moved into place when the header, the JEntries and the keys (which
 * come first) are known.
 */
static bool
jb_container(JbEncoder *e, const char **pp, const char *end, JEntry *entry)
{
	JbStacks   *st = e->st;
	const char *p = *pp;
	bool		is_object = (*p == '{');
	const char *what = is_object ? "object" : "array";
	char		close = is_object ? '}' : ']';
	int			n = 0;
	int			mark = st->nmembers;	/* the children: members[mark..] */
	int			dmark = st->data.len;	/* their data: data.data[dmark..] */
	JbMember   *members;
	const char *data;
	int			base = e->buf.len;
	int			entries;
	uint32		header;
	uint32		totallen = 0;
	JbRoot	   *root = e->root;
	JbRootMember *rm = NULL;

	check_stack_depth();
	e->root = NULL;				/* only the outermost container's */
	/* the children: an object's keys unescaped, every value encoded */
	for (p++; *p != close; n++)
	{
		const char *key = NULL;
		int			keylen = 0;
		int			start;
		int			pad;
		JEntry		meta;
		JbMember   *m;

		if (*p == ',')
			p++;
		if (is_object)
		{
			if (!jb_string(e, &p, end, &key, &keylen))
				return false;
			p++;				/* ':' */
		}
		/* every value is read, an overwritten one too, as jsonb_in reads it */
		start = e->buf.len;
		if (!jb_value(e, &p, end, &meta))
			return false;
		/* after the value: its own children are off the stack again */
		Assert(st->nmembers == mark + n);
		m = jb_push_member(e);
		pad = (JBE_ISNUMERIC(meta) || JBE_ISCONTAINER(meta)) ? INTALIGN(start) - start : 0;
		m->key = key;
		m->keylen = keylen;
		m->order = n;
		m->type = meta & JENTRY_TYPEMASK;
		m->off = start + pad - base;
		m->len = (int) JBE_OFFLENFLD(meta) - pad;
		Assert(e->buf.len == start + pad + m->len);
	}
	*pp = p + 1;
	members = st->members + mark;
	if (is_object && n > 1)
	{
		bool		dups = false;

		/* jsonb's order; of equal keys the first (the last written) stays */
		sort_jb_members(members, n, &dups);
		if (dups)
		{
			int			k = 0;

			for (int i = 0; i < n; i++)
				if (k == 0 || !same_key(&members[k - 1], &members[i]))
					members[k++] = members[i];
			n = k;
		}
	}
	if (n > JB_CMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("number of jsonb %s exceeds the maximum allowed (%zu)",
						is_object ? "object pairs" : "array elements", (size_t) JB_CMASK)));

	/* the values' data aside; then header, JEntries, keys, values */
	appendBinaryStringInfo(&st->data, e->buf.data + base, e->buf.len - base);
	data = st->data.data + dmark;
	e->buf.len = base;
	jb_pad(e);
	header = (uint32) n | (is_object ? JB_FOBJECT : JB_FARRAY);
	jb_append(e, &header, sizeof(uint32));
	entries = e->buf.len;
	enlargeStringInfo(&e->buf, sizeof(JEntry) * n * (is_object ? 2 : 1));
	e->buf.len += sizeof(JEntry) * n * (is_object ? 2 : 1);
	if (is_object)
		for (int i = 0; i < n; i++)
		{
			jb_append(e, members[i].key, members[i].keylen);
			jb_entry(e, entries, i, jb_string_entry(members[i].keylen), &totallen, what);
		}
	if (root != NULL && is_object)
	{
		root->n = n;
		root->m = palloc(sizeof(JbRootMember) * Max(n, 1));
		rm = root->m;
	}
	for (int i = 0; i < n; i++)
	{
		const JbMember *m = &members[i];
		int			pad = 0;

		if (m->type == JENTRY_ISNUMERIC || m->type == JENTRY_ISCONTAINER)
			pad = jb_pad(e);
		if (rm != NULL)
			rm[i] = (JbRootMember)
			{
				m->key, m->keylen, m->type, e->buf.len, m->len
			};
		jb_append(e, data + m->off, m->len);
		jb_entry(e, entries, is_object ? n + i : i, m->type | (uint32) (pad + m->len),
				 &totallen, what);
	}
	/* off the stacks */
	st->nmembers = mark;
	st->data.len = dmark;
	totallen = (uint32) (e->buf.len - base);
	if (totallen > JENTRY_OFFLENMASK)
		jb_too_large(what);
	*entry = JENTRY_ISCONTAINER | totallen;
	return true;
}

/*
 * numeric's on-disk short format, as utils/adt/numeric.c writes it (an
 * on-disk format, so it does not change): a varlena header, a 16-bit header
 * (short, sign, display scale, weight), then base-10000 digits, without
 * leading or trailing zero digits.
 */
#define JB_NUMERIC_SHORT		0x8000
#define JB_NUMERIC_SHORT_NEG	0x2000
#define JB_NUMERIC_WEIGHT_MASK	0x003F
#define JB_NBASE				10000

/* a numeric datum appended, 4-byte aligned first; its JEntry */
static JEntry
jb_numeric(JbEncoder *e, const void *num, int len)
{
	int			pad = jb_pad(e);

	jb_reserve(e, len);
	memcpy(e->buf.data + e->buf.len, num, len);
	e->buf.len += len;
	return JENTRY_ISNUMERIC | (uint32) (pad + len);
}

/* an integer's numeric, as numeric_in makes it, appended; its JEntry */
static JEntry
jb_integer(JbEncoder *e, bool neg, uint64 u)
{
	int16		digits[5];		/* 20 decimal digits at most */
	int			n = 0;
	int			weight = -1;
	union
	{
		int32		align;		/* SET_VARSIZE writes a 4-byte word */
		char		data[VARHDRSZ + sizeof(uint16) + sizeof(digits)];
	}			buf;
	uint16		header;
	int			len;

	/* base-10000 digits from the last; trailing zero digits dropped */
	for (; u > 0; u /= JB_NBASE)
	{
		int16		d = (int16) (u % JB_NBASE);

		weight++;
		if (d != 0 || n > 0)
			digits[n++] = d;
	}
	if (n == 0)
		weight = 0, neg = false;	/* zero: weight 0, positive */
	header = JB_NUMERIC_SHORT | (neg ? JB_NUMERIC_SHORT_NEG : 0) |
		(weight & JB_NUMERIC_WEIGHT_MASK);
	len = VARHDRSZ + sizeof(uint16) + n * sizeof(int16);
	SET_VARSIZE(buf.data, len);
	memcpy(buf.data + VARHDRSZ, &header, sizeof(uint16));
	for (int i = 0; i < n; i++)
		memcpy(buf.data + VARHDRSZ + sizeof(uint16) + i * sizeof(int16),
			   &digits[n - 1 - i], sizeof(int16));
	return jb_numeric(e, buf.data, len);
}

/* the number at *pp, appended; *pp moves past it; its JEntry */
static JEntry
jb_number(JbEncoder *e, const char **pp, const char *end)
{
	const char *start = *pp;
	const char *p = start;
	bool		neg = (*p == '-');
	bool		integer = true;
	uint64		u = 0;
	Numeric		num;

	if (neg)
		p++;
	for (; p < end && *p >= '0' && *p <= '9'; p++)
	{
		if (u > (PG_UINT64_MAX - 9) / 10)
			integer = false;
		u = u * 10 + (uint64) (*p - '0');
	}
	while (p < end && (*p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-' ||
					   (*p >= '0' && *p <= '9')))
	{
		integer = false;
		p++;
	}
	*pp = p;
	if (integer)
		return jb_integer(e, neg, u);
	num = DatumGetNumeric(DirectFunctionCall3(numeric_in,
											  CStringGetDatum(pnstrdup(start, p - start)),
											  ObjectIdGetDatum(InvalidOid),
											  Int32GetDatum(-1)));
	return jb_numeric(e, num, VARSIZE_ANY(num));
}

/* the value at *pp, its data appended and its JEntry in *entry */
static bool
jb_value(JbEncoder *e, const char **pp, const char *end, JEntry *entry)
{
	switch (**pp)
	{
		case '{':
		case '[':
			return jb_container(e, pp, end, entry);
		case '"':
			{
				const char *s;
				int			len;

				if (!jb_string(e, pp, end, &s, &len))
					return false;
				*entry = jb_string_entry(len);
				jb_append(e, s, len);
				return true;
			}
		case 't':
			*entry = JENTRY_ISBOOL_TRUE;
			*pp += 4;
			return true;
		case 'f':
			*entry = JENTRY_ISBOOL_FALSE;
			*pp += 5;
			return true;
		case 'n':
			*entry = JENTRY_ISNULL;
			*pp += 4;
			return true;
		default:
			*entry = jb_number(e, pp, end);
			return true;
	}
}

/*
 * An object or array field (no NUL in it) as a jsonb datum in *out; when
 * root is not NULL, where the members of an object landed.  False: a
 * string jsonb_in refuses, for the caller to let jsonb_in report.
 */
static inline bool
jb_encode(PsRowReader *rr, const PsField *f, JbRoot *root, Datum *out)
{
	JbEncoder	e;
	const char *p = f->text;
	JEntry		entry;

	Assert(!(f->flags & PS_FIELD_NUL));
	e.rr = rr;
	if (rr->jb == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(rr->cxt);

		rr->jb = palloc(sizeof(JbStacks));
		rr->jb->maxmembers = 32;
		rr->jb->members = palloc(sizeof(JbMember) * rr->jb->maxmembers);
		initStringInfo(&rr->jb->data);
		MemoryContextSwitchTo(old);
	}
	e.st = rr->jb;
	e.st->nmembers = 0;
	resetStringInfo(&e.st->data);
	e.root = root;
	if (root != NULL)
		root->n = 0;
	initStringInfo(&e.buf);
	appendStringInfoSpaces(&e.buf, VARHDRSZ);
	if (!jb_container(&e, &p, f->text + f->len, &entry))
		return false;
	Assert(p == f->text + f->len);
	SET_VARSIZE(e.buf.data, e.buf.len);
	if (root != NULL)
		root->datum = e.buf.data;
	*out = PointerGetDatum(e.buf.data);
	return true;
}

/*
 * The jsonb of the outermost object's member key, when that is an object
 * or an array: a copy of its bytes in root's datum.  False otherwise.
 */
static bool
jb_root_member(const JbRoot *root, const char *key, Datum *out)
{
	size_t		keylen = strlen(key);

	for (int i = 0; i < root->n; i++)
	{
		const JbRootMember *m = &root->m[i];
		Jsonb	   *jb;

		if ((size_t) m->keylen != keylen || memcmp(m->key, key, keylen) != 0)
			continue;
		if (m->type != JENTRY_ISCONTAINER)
			return false;
		jb = palloc(VARHDRSZ + m->len);
		SET_VARSIZE(jb, VARHDRSZ + m->len);
		memcpy(VARDATA(jb), root->datum + m->off, m->len);
		*out = JsonbPGetDatum(jb);
		return true;
	}
	return false;
}

static Datum
convert_jsonb(PsRowReader *rr, const PsField *f)
{
	JsonbValue	jv;
	int			len;
	Datum		d;

	switch ((PsJsonType) f->type)
	{
		case PS_JSON_OBJECT:
		case PS_JSON_ARRAY:
			/* jsonb holds no NUL in a string */
			if (f->flags & PS_FIELD_NUL)
				nul_error();
			if (jb_encode(rr, f, NULL, &d))
				return d;
			/* jsonb_in's error for what it does not take */
			return DirectFunctionCall1(jsonb_in,
									   CStringGetDatum(field_cstring(rr, f, &len)));
		case PS_JSON_STRING:
			jv.type = jbvString;
			jv.val.string.val = field_cstring(rr, f, &len);
			jv.val.string.len = len;
			break;
		case PS_JSON_NUMBER:
			jv.type = jbvNumeric;
			jv.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																 CStringGetDatum(f->text),
																 ObjectIdGetDatum(InvalidOid),
																 Int32GetDatum(-1)));
			break;
		default:
			jv.type = jbvBool;
			jv.val.boolean = (f->type == PS_JSON_TRUE);
			break;
	}
	/* a scalar: a raw-scalar array, as jsonb stores it */
	return JsonbPGetDatum(JsonbValueToJsonb(&jv));
}

static Datum
convert_json(PsRowReader *rr, const PsField *f)
{
	int			len;
	char	   *s = field_cstring(rr, f, &len);

	if (f->type == PS_JSON_STRING)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		escape_json(&buf, s);
		s = buf.data;
	}
	return DirectFunctionCall1(json_in, CStringGetDatum(s));
}

/* a text datum of len bytes (cstring_to_text_with_len, its copy inline) */
static inline Datum
text_datum(const char *s, int len)
{
	text	   *t = (text *) palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	ps_copy(VARDATA(t), s, len);
	return PointerGetDatum(t);
}

/*
 * A short array of plain ASCII strings, the usual shape of tags, read in
 * place from its compact text (which the scanner validated): the count of
 * elements, each in s[] and len[]; -1 when it holds anything else or more
 * than max, for the scanner to read.  ASCII is the same in every server
 * encoding.
 */
static int
plain_strings(const char *p, const char *end, int max, const char **s, int *len)
{
	int			n = 0;

	Assert(*p == '[' && end[-1] == ']');
	for (p++;; p++)
	{
		const char *q;

		if (*p != '"' || n == max)
			return -1;
		q = (const char *) ps_ascii_run((const unsigned char *) p + 1,
										(const unsigned char *) end);
		if (q == end || *q != '"')
			return -1;
		s[n] = p + 1;
		len[n++] = (int) (q - (p + 1));
		p = q + 1;
		if (*p == ']')
			return n;
		if (*p != ',')
			return -1;
	}
}

/*
 * A one-dimensional text[] of n elements, none null, laid out as
 * construct_array lays it out (each element a 4-byte-header varlena,
 * int-aligned), without a datum per element first.
 */
static Datum
text_array(const char *const *s, const int *len, int n)
{
	Size		size = ARR_OVERHEAD_NONULLS(1);
	ArrayType  *a;
	char	   *p;

	for (int i = 0; i < n; i++)
		size += INTALIGN(VARHDRSZ + len[i]);
	a = (ArrayType *) palloc0(size);
	SET_VARSIZE(a, size);
	a->ndim = 1;
	a->dataoffset = 0;
	a->elemtype = TEXTOID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	p = ARR_DATA_PTR(a);
	for (int i = 0; i < n; i++)
	{
		SET_VARSIZE(p, VARHDRSZ + len[i]);
		ps_copy(p + VARHDRSZ, s[i], len[i]);
		p += INTALIGN(VARHDRSZ + len[i]);
	}
	Assert(p == (char *) a + size);
	return PointerGetDatum(a);
}

static Datum column_datum(PsRowReader *rr, const PsField *f, PsColumn *col);

/* a JSON array (compact text) to a one-dimensional array */
static Datum
convert_array(PsRowReader *rr, const PsField *f, PsColumn *col)
{
	PsPageScan *scan;
	PsRecordCursor cur;
	PsJsonType type;
	const PsField *elems;
	uint32		n;
	Datum	   *values;
	bool	   *enulls;
	int			dims[1];
	int			lbs[1] = {1};

	if (f->type != PS_JSON_ARRAY)
		conv_error("Postscript value for array column is not a JSON array%s", "");
	/* the usual empty array, without reading it again */
	if (f->len == 2)
	{
		Assert(f->text[0] == '[' && f->text[1] == ']');
		return PointerGetDatum(construct_empty_array(col->elemtype));
	}
	/* tags and their like, without reading them again */
	if (col->elemtype == TEXTOID)
	{
#define PLAIN_MAX 16
		const char *s[PLAIN_MAX];
		int			len[PLAIN_MAX];
		int			k = plain_strings(f->text, f->text + f->len, PLAIN_MAX, s, len);

		if (k > 0)
			return text_array(s, len, k);
#undef PLAIN_MAX
	}
	/* one scanner for all rows: its memory is kept, not made again */
	if (rr->elements == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(rr->cxt);

		rr->elements = ps_page_new(NULL, PS_SCAN_ELEMENTS, NULL, PS_MAX_JSON_DEPTH);
		MemoryContextSwitchTo(old);
	}
	else
		ps_scan_reset(rr->elements);
	scan = rr->elements;
	if (ps_scan_feed(scan, f->text, f->len) != PS_SCAN_OK ||
		ps_scan_finish(scan) != PS_SCAN_OK)
		elog(ERROR, "a JSON array the scanner accepted could not be read again");
	ps_scan_cursor(scan, &cur);
	if (!ps_scan_next_record(&cur, &type, &elems, &n))
		elog(ERROR, "a JSON array the scanner accepted could not be read again");
	if (n == 0)
		return PointerGetDatum(construct_empty_array(col->elemtype));
	values = palloc(sizeof(Datum) * n);
	enulls = palloc(sizeof(bool) * n);
	for (uint32 i = 0; i < n; i++)
	{
		const PsField *e = &elems[i];

		enulls[i] = (e->type == PS_JSON_NULL);
		if (enulls[i])
		{
			values[i] = (Datum) 0;
			continue;
		}
		values[i] = column_datum(rr, e, col->elem);
	}
	dims[0] = (int) n;
	return PointerGetDatum(construct_md_array(values, enulls, 1, dims, lbs,
											  col->elemtype, col->elem_len,
											  col->elem_byval, col->elem_align));
}

/* ---------------------------------------------------------------- dispatch */

static Datum
field_to_datum(PsRowReader *rr, const PsField *f, PsColumn *col)
{
	PsJsonType t = (PsJsonType) f->type;
	int			len;
	char	   *s;

	Assert(t != PS_JSON_NULL);
	switch ((PsConvKind) col->conv)
	{
		case PS_CONV_TEXT:
			s = field_cstring(rr, f, &len);
			return text_datum(s, len);
		case PS_CONV_INT8:
			if (t == PS_JSON_NUMBER && (f->flags & PS_FIELD_INTEGER))
				return Int64GetDatum(field_int_in(f, PG_INT64_MIN, PG_INT64_MAX, "bigint"));
			break;
		case PS_CONV_INT4:
			if (t == PS_JSON_NUMBER && (f->flags & PS_FIELD_INTEGER))
				return Int32GetDatum((int32) field_int_in(f, PG_INT32_MIN, PG_INT32_MAX, "integer"));
			break;
		case PS_CONV_INT2:
			if (t == PS_JSON_NUMBER && (f->flags & PS_FIELD_INTEGER))
				return Int16GetDatum((int16) field_int_in(f, PG_INT16_MIN, PG_INT16_MAX, "smallint"));
			break;
		case PS_CONV_FLOAT8:
			if (t == PS_JSON_NUMBER)
			{
				double		d;

				/* as float8in: beyond the range, or so small it is 0 */
				errno = 0;
				d = strtod(f->text, NULL);
				if (isinf(d) || isnan(d) || (errno == ERANGE && d == 0.0))
					range_error("double precision");
				return Float8GetDatum(d);
			}
			break;
		case PS_CONV_NUMERIC:
			if (t == PS_JSON_NUMBER)
			{
				int64		i;

				if ((f->flags & PS_FIELD_INTEGER) && field_int64(f, &i))
					return NumericGetDatum(int64_to_numeric(i));
				return DirectFunctionCall3(numeric_in, CStringGetDatum(f->text),
										   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
			}
			break;
		case PS_CONV_BOOL:
			if (t == PS_JSON_TRUE || t == PS_JSON_FALSE)
				return BoolGetDatum(t == PS_JSON_TRUE);
			break;
		case PS_CONV_TIMESTAMPTZ:
		case PS_CONV_TIMESTAMP:
			return convert_timestamp(rr, f, col);
		case PS_CONV_DATE:
			return convert_date(f);
		case PS_CONV_JSONB:
			return convert_jsonb(rr, f);
		case PS_CONV_JSON:
			return convert_json(rr, f);
		case PS_CONV_ARRAY:
			return convert_array(rr, f, col);
		case PS_CONV_GENERIC:
			break;
	}
	/* everything else: the type's input function on the text form */
	if ((t == PS_JSON_OBJECT || t == PS_JSON_ARRAY) && col->conv != PS_CONV_GENERIC)
		conv_error("Postscript sent a JSON %s where the column expects a scalar",
				   t == PS_JSON_OBJECT ? "object" : "array");
	return InputFunctionCall(&col->infunc, field_cstring(rr, f, &len), col->ioparam,
							 col->typmod);
}

/* a value that is not null, for col: converted, then its domain checked */
static Datum
column_datum(PsRowReader *rr, const PsField *f, PsColumn *col)
{
	Datum		d = field_to_datum(rr, f, col);

	if (OidIsValid(col->domain) && col->conv != PS_CONV_GENERIC)
		domain_check(d, false, col->domain, &col->domain_extra, col->domain_cxt);
	return d;
}

/*
 * Fill values/nulls (indexed by attnum - 1) from one record of a page: its
 * JSON type and the fields present.  Columns the reader does not read are
 * NULL.
 */
void
ps_row_values(PsRowReader *rr, PsJsonType type, const PsField *fields,
			  uint32 nfields, Datum *values, bool *nulls)
{
	ErrorContextCallback errcb;
	ConvState	cs;
	JbRoot		whole;
	bool		have_whole = false;

	memset(nulls, true, sizeof(bool) * rr->table->natts);
	if (type != PS_JSON_OBJECT)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Postscript sent a record of foreign table \"%s\" that is not a JSON object",
						rr->table->relname)));

	cs.rr = rr;
	cs.fields = fields;
	cs.nfields = nfields;
	cs.column = NULL;
	cs.value = NULL;
	errcb.callback = conv_error_callback;
	errcb.arg = &cs;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	/*
	 * The whole record's jsonb first, when other jsonb columns are copied
	 * out of it.  Should the encoder refuse it, every column is converted
	 * in its turn below, and the first to fail reports, as without it.
	 */
	if (rr->whole_jsonb != NULL)
	{
		for (uint32 i = nfields; i-- > 0;)
		{
			const PsField *f = &fields[i];
			int			idx = rr->whole_jsonb->attnum - 1;

			if (f->slot != rr->whole_slot)
				continue;
			cs.column = rr->whole_jsonb;
			cs.value = f;
			if (f->type == PS_JSON_OBJECT && !(f->flags & PS_FIELD_NUL) &&
				jb_encode(rr, f, &whole, &values[idx]))
			{
				nulls[idx] = false;
				have_whole = true;
			}
			break;
		}
	}

	for (uint32 i = 0; i < nfields; i++)
	{
		const PsField *f = &fields[i];

		Assert(f->slot < rr->nslots);
		for (int k = rr->slot_first[f->slot]; k < rr->slot_first[f->slot + 1]; k++)
		{
			PsColumn   *col = rr->slot_cols[k];
			int			idx = col->attnum - 1;

			if (have_whole && col == rr->whole_jsonb)
				continue;
			cs.column = col;
			cs.value = f;
			/* a later duplicate key wins, as in a parsed object */
			nulls[idx] = (f->type == PS_JSON_NULL);
			if (nulls[idx])
				values[idx] = (Datum) 0;
			else if (!(have_whole && jsonb_of_one_key(col) &&
					   (f->type == PS_JSON_OBJECT || f->type == PS_JSON_ARRAY) &&
					   !(f->flags & PS_FIELD_NUL) &&
					   jb_root_member(&whole, col->path[0], &values[idx])))
				values[idx] = column_datum(rr, f, col);
		}
	}

	error_context_stack = errcb.previous;
}

/*
 * One record parsed by json-c (a write's answer) to values/nulls, every
 * column, through the same conversion as a page: its text is read as a
 * one-record page.
 */
void
ps_record_to_values(PsTable *t, PsJson *rec, Datum *values, bool *nulls)
{
	PsRowReader *rr = ps_row_reader(t, bms_make_singleton(0 - FirstLowInvalidHeapAttributeNumber));
	const char *text = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN |
													  JSON_C_TO_STRING_NOSLASHESCAPE);
	PsPageScan *scan = ps_page_new(rr, PS_SCAN_RECORD, NULL, PS_MAX_JSON_DEPTH);
	PsRecordCursor cur;
	PsJsonType type;
	const PsField *fields;
	uint32		n;

	if (ps_scan_feed(scan, text, strlen(text)) != PS_SCAN_OK ||
		ps_scan_finish(scan) != PS_SCAN_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("Postscript sent a record of foreign table \"%s\" that cannot be read",
						t->relname),
				 errdetail("%s.", ps_scan_error_desc(ps_scan_error(scan)))));
	ps_scan_cursor(scan, &cur);
	if (!ps_scan_next_record(&cur, &type, &fields, &n))
		elog(ERROR, "a record the scanner accepted could not be read again");
	ps_row_values(rr, type, fields, n, values, nulls);
}

/*
 * YYYY-MM-DDTHH:MM:SS, the head of every time the API sends, read without
 * a bound check per digit; false for anything else (the general reading
 * then takes it, or refuses it).  Ranges are the caller's to check.
 */
static inline bool
iso8601_head(const char *s, size_t len, int *y, int *mo, int *d, int *h, int *mi,
			 int *sec)
{
	const unsigned char *u = (const unsigned char *) s;
	unsigned	v[14];
	bool		bad = false;

	if (len < 19 || u[4] != '-' || u[7] != '-' || u[10] != 'T' || u[13] != ':' ||
		u[16] != ':')
		return false;
#define HEAD_DIGIT(i, at) (v[i] = (unsigned) u[at] - '0', bad |= (v[i] > 9))
	/* a byte below '0' wraps round to above 9 */
	HEAD_DIGIT(0, 0), HEAD_DIGIT(1, 1), HEAD_DIGIT(2, 2), HEAD_DIGIT(3, 3);
	HEAD_DIGIT(4, 5), HEAD_DIGIT(5, 6), HEAD_DIGIT(6, 8), HEAD_DIGIT(7, 9);
	HEAD_DIGIT(8, 11), HEAD_DIGIT(9, 12), HEAD_DIGIT(10, 14), HEAD_DIGIT(11, 15);
	HEAD_DIGIT(12, 17), HEAD_DIGIT(13, 18);
#undef HEAD_DIGIT
	if (bad)
		return false;
	*y = (int) (v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3]);
	*mo = (int) (v[4] * 10 + v[5]);
	*d = (int) (v[6] * 10 + v[7]);
	*h = (int) (v[8] * 10 + v[9]);
	*mi = (int) (v[10] * 10 + v[11]);
	*sec = (int) (v[12] * 10 + v[13]);
	return true;
}

/*
 * ISO 8601 date-time to TimestampTz, without the cost of the general
 * parser: YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[[:]MM]].  No
 * zone means UTC.  Returns false for anything else: the only form the API
 * uses, and no words such as "yesterday" or "epoch".
 */
bool
ps_parse_iso8601(const char *s, size_t len, int64 *result)
{
	const char *p = s;
	const char *end = s + len;
	int			y,
				mo,
				d,
				h = 0,
				mi = 0,
				sec = 0;
	int64		usec = 0;
	int			tzsec = 0;
	bool		has_time = true;
	bool		has_sec = true;

#define DIGITS(n, out) \
	do { \
		int _v = 0; \
		for (int _i = 0; _i < (n); _i++) { \
			if (p >= end || *p < '0' || *p > '9') return false; \
			_v = _v * 10 + (*p++ - '0'); \
		} \
		(out) = _v; \
	} while (0)

	/* no longer than timestamptz_in reads */
	if (len > MAXDATELEN)
		return false;
	if (iso8601_head(s, len, &y, &mo, &d, &h, &mi, &sec))
		p = s + 19;
	else
	{
		DIGITS(4, y);
		if (p >= end || *p++ != '-')
			return false;
		DIGITS(2, mo);
		if (p >= end || *p++ != '-')
			return false;
		DIGITS(2, d);
		has_time = (p < end && (*p == 'T' || *p == 't' || *p == ' '));
		has_sec = false;
		if (has_time)
		{
			p++;
			DIGITS(2, h);
			if (p >= end || *p++ != ':')
				return false;
			DIGITS(2, mi);
			has_sec = (p < end && *p == ':');
			if (has_sec)
			{
				p++;
				DIGITS(2, sec);
			}
		}
	}
	if (has_sec && p < end && (*p == '.' || *p == ','))
	{
		static const int scale[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
		const char *frac = p;
		int			ndig = 0;

		p++;
		if (p >= end || *p < '0' || *p > '9')
			return false;
		for (; p < end && *p >= '0' && *p <= '9'; ndig++, p++)
			if (ndig < 6)
				usec = usec * 10 + (*p - '0');
		if (ndig <= 6)
			usec *= scale[ndig];
		else
		{
			/* finer than a microsecond: rounded as timestamptz_in rounds it */
			char	   *f = pnstrdup(frac, p - frac);

			f[0] = '.';
			usec = (int64) rint(strtod(f, NULL) * USECS_PER_SEC);
			pfree(f);
		}
	}
	if (has_time && p < end && (*p == 'Z' || *p == 'z'))
		p++;
	else if (has_time && p < end && (*p == '+' || *p == '-'))
	{
		int			sign = (*p++ == '-') ? -1 : 1;
		int			tzh,
					tzm = 0;

		DIGITS(2, tzh);
		if (p < end && *p == ':')
		{
			p++;
			DIGITS(2, tzm);
		}
		else if (p < end)
			DIGITS(2, tzm);
		if (tzh > 15 || tzm > 59)
			return false;
		tzsec = sign * (tzh * 3600 + tzm * 60);
	}
	if (p != end)
		return false;
#undef DIGITS

	/*
	 * As timestamptz_in reads them: a leap second (:60, no fraction) is the
	 * next minute's first, 24:00:00 the next day's midnight
	 */
	if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
		(d > 28 && d > day_tab[isleap(y)][mo - 1]) || mi > 59 ||
		sec > 60 || (sec == 60 && usec > 0) ||
		(h > 23 && (h > 24 || mi > 0 || sec > 0 || usec > 0)))
		return false;

	*result = ((int64) (date2j(y, mo, d) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			   h * 3600 + mi * 60 + sec - tzsec) * USECS_PER_SEC + usec;
	return IS_VALID_TIMESTAMP(*result);
}

/* ---------------------------------------------------------------- Datum to JSON */

/*
 * json-c reads a JSON integer into 64 bits and silently clamps one beyond
 * them: refuse such an integer in a jsonb value before it is parsed (a
 * number with a fraction keeps its text).  jsonb writes 1e400 out in full,
 * as an integer.
 */
static void
check_json_integers(Jsonb *jb)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken r;

	while ((r = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		char	   *t;
		bool		neg;
		const char *max;
		size_t		len;

		if ((r != WJB_VALUE && r != WJB_ELEM) || v.type != jbvNumeric)
			continue;
		t = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
		if (strpbrk(t, ".eE") != NULL)
			continue;
		neg = t[0] == '-';
		max = neg ? "9223372036854775808" : "18446744073709551615";
		len = strlen(t + neg);
		if (len < strlen(max) || (len == strlen(max) && strcmp(t + neg, max) <= 0))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("integer %s%.30s%s in a JSON value is out of range for Postscript",
						neg ? "-" : "", t + neg, len > 30 ? "..." : ""),
				 errdetail("Postscript's JSON carries integers from -9223372036854775808 to 18446744073709551615."),
				 errhint("Write it as a JSON string.")));
	}
}

/* a Datum as a json-c value, for request bodies */
PsJson *
ps_datum_to_json(Datum value, Oid typid)
{
	/* a domain's value is written as the type under it */
	typid = getBaseType(typid);
	switch (typid)
	{
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			{
				char	   *s = TextDatumGetCString(value);
				char	   *u = pg_server_to_any(s, strlen(s), PG_UTF8);

				return json_object_new_string(u);
			}
		case INT2OID:
			return json_object_new_int64(DatumGetInt16(value));
		case INT4OID:
			return json_object_new_int64(DatumGetInt32(value));
		case INT8OID:
			return json_object_new_int64(DatumGetInt64(value));
		case BOOLOID:
			return json_object_new_boolean(DatumGetBool(value));
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			{
				struct pg_tm tm;
				fsec_t		fsec;
				Timestamp	ts = DatumGetTimestamp(value);
				char		buf[64];

				if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
							 errmsg("timestamp out of range for the Postscript API")));
				if (fsec)
					snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
							 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
							 tm.tm_sec, (int) fsec);
				else
					snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ",
							 tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
							 tm.tm_sec);
				return json_object_new_string(buf);
			}
		default:
			break;
	}

	{
		Oid			outfunc;
		bool		isvarlena;
		char	   *s;
		Oid			elemtype = get_element_type(typid);

		if (typid == JSONBOID || typid == JSONOID)
		{
			json_tokener *tok;
			PsJson *o;

			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			s = OidOutputFunctionCall(outfunc, value);
			check_json_integers(typid == JSONBOID ? DatumGetJsonbP(value)
								: DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s))));
			s = pg_server_to_any(s, strlen(s), PG_UTF8);
			tok = json_tokener_new_ex(64);
			o = json_tokener_parse_ex(tok, s, strlen(s));
			json_tokener_free(tok);
			return o;
		}
		if (OidIsValid(elemtype))
		{
			ArrayType  *arr = DatumGetArrayTypeP(value);
			Datum	   *elems;
			bool	   *enulls;
			int			n;
			int16		elen;
			bool		ebyval;
			char		ealign;
			PsJson *a = json_object_new_array();

			get_typlenbyvalalign(elemtype, &elen, &ebyval, &ealign);
			deconstruct_array(arr, elemtype, elen, ebyval, ealign, &elems, &enulls, &n);
			for (int i = 0; i < n; i++)
				json_object_array_add(a, enulls[i] ? NULL : ps_datum_to_json(elems[i], elemtype));
			return a;
		}
		getTypeOutputInfo(typid, &outfunc, &isvarlena);
		s = OidOutputFunctionCall(outfunc, value);
		if (typid == NUMERICOID || typid == FLOAT4OID || typid == FLOAT8OID)
			return json_object_new_double_s(strtod(s, NULL), s);
		return json_object_new_string(pg_server_to_any(s, strlen(s), PG_UTF8));
	}
}
