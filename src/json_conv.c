/*-------------------------------------------------------------------------
 *
 * json_conv.c
 *		JSON values (json-c) to PostgreSQL Datums, and back for writes.
 *
 * Any column type works through the type's input function on the value's
 * text; text, integers, float8, numeric, boolean, timestamps, jsonb and
 * arrays take fast paths.  JSON null and missing keys are NULL.  A value
 * that does not fit its column is an error whose context names the table,
 * column, row id and value; nothing is truncated silently.
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
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "postscript_fdw.h"

/* state for the error context of a row conversion */
typedef struct ConvErrorState
{
	PsTable    *table;
	PsJson *record;
	PsColumn   *column;
	PsJson *value;
} ConvErrorState;

static ConvErrorState *conv_state = NULL;

static void
conv_error_callback(void *arg)
{
	ConvErrorState *s = (ConvErrorState *) arg;
	PsJson *id = NULL;
	const char *idstr = "?";
	const char *val = "";

	if (s->column == NULL)
		return;
	if (s->record && json_object_is_type(s->record, json_type_object) &&
		json_object_object_get_ex(s->record, "id", &id) && id != NULL)
		idstr = json_object_get_string(id);
	if (s->value)
		val = json_object_to_json_string_ext(s->value, JSON_C_TO_STRING_PLAIN);
	errcontext("column \"%s\" of foreign table \"%s\", row id %s, value %.100s%s",
			   s->column->name, s->table ? s->table->relname : "?",
			   idstr, val, strlen(val) > 100 ? "..." : "");
}

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
			return typmod < 0 ? PS_CONV_TIMESTAMPTZ : PS_CONV_GENERIC;
		case TIMESTAMPOID:
			return typmod < 0 ? PS_CONV_TIMESTAMP : PS_CONV_GENERIC;
		case JSONBOID:
			return PS_CONV_JSONB;
		case JSONOID:
			return PS_CONV_JSON;
		default:
			return PS_CONV_GENERIC;
	}
}

void
ps_column_prepare(PsColumn *col)
{
	Oid			infunc;
	Oid			elemtype;

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

	getTypeInputInfo(col->typid, &infunc, &col->ioparam);
	fmgr_info(infunc, &col->infunc);
	col->conv = conv_for_type(col->typid, col->typmod);

	elemtype = get_element_type(col->typid);
	if (OidIsValid(elemtype) && col->typid != INT2VECTOROID &&
		col->typid != OIDVECTOROID)
	{
		col->conv = PS_CONV_ARRAY;
		col->elemtype = elemtype;
		getTypeInputInfo(elemtype, &infunc, &col->elem_ioparam);
		fmgr_info(infunc, &col->elem_infunc);
		get_typlenbyvalalign(elemtype, &col->elem_len, &col->elem_byval,
							 &col->elem_align);
	}
}

PsJson *
ps_json_lookup(PsJson *obj, PsColumn *col)
{
	PsJson *cur = obj;

	for (int i = 0; i < col->npath; i++)
	{
		if (cur == NULL || !json_object_is_type(cur, json_type_object) ||
			!json_object_object_get_ex(cur, col->path[i], &cur))
			return NULL;
	}
	return cur;
}

/* ---------------------------------------------------------------- scalars */

static void
conv_error(const char *fmt, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg(fmt, what)));
}

/* a JSON string as server-encoded C string; rejects NUL bytes */
static char *
json_string_cstring(PsJson *v, int *lenp)
{
	const char *s = json_object_get_string(v);
	int			len = json_object_get_string_len(v);
	char	   *res;

	if (memchr(s, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("Postscript value contains a NUL character (\\u0000)")));
	/* the tokener validated UTF-8; convert if the database is not UTF8 */
	res = pg_any_to_server(s, len, PG_UTF8);
	if (res != s)
		len = strlen(res);
	if (lenp)
		*lenp = len;
	return (char *) res;
}

/* the text form of any JSON value, as the type input function gets it */
static char *
json_text_form(PsJson *v)
{
	switch (json_object_get_type(v))
	{
		case json_type_string:
			return json_string_cstring(v, NULL);
		case json_type_boolean:
			return json_object_get_boolean(v) ? "true" : "false";
		case json_type_double:
			{
				double		d = json_object_get_double(v);

				if (isnan(d) || isinf(d))
					conv_error("Postscript sent a number out of range%s", "");
				/* the number as the API wrote it */
				return (char *) json_object_get_string(v);
			}
		case json_type_int:
			return (char *) json_object_get_string(v);
		default:
			return pstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
														  JSON_C_TO_STRING_NOSLASHESCAPE));
	}
}

/* json-c saturates integers that overflow 64 bits: treat the limits as
 * possibly overflowed */
static int64
json_int64_checked(PsJson *v)
{
	int64		i = json_object_get_int64(v);

	if (i == PG_INT64_MAX || i == PG_INT64_MIN)
		conv_error("Postscript sent an integer out of range%s",
				   " (beyond 64 bits: the value shown is where the JSON parser capped it)");
	return i;
}

/*
 * ISO 8601 date-time to TimestampTz, without the cost of the general
 * parser: YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[[:]MM]].  No
 * zone means UTC.  Returns false for anything else (the caller falls back
 * to the type's input function).
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

#define DIGITS(n, out) \
	do { \
		int _v = 0; \
		for (int _i = 0; _i < (n); _i++) { \
			if (p >= end || *p < '0' || *p > '9') return false; \
			_v = _v * 10 + (*p++ - '0'); \
		} \
		(out) = _v; \
	} while (0)

	DIGITS(4, y);
	if (p >= end || *p++ != '-')
		return false;
	DIGITS(2, mo);
	if (p >= end || *p++ != '-')
		return false;
	DIGITS(2, d);
	if (p < end && (*p == 'T' || *p == 't' || *p == ' '))
	{
		p++;
		DIGITS(2, h);
		if (p >= end || *p++ != ':')
			return false;
		DIGITS(2, mi);
		if (p < end && *p == ':')
		{
			p++;
			DIGITS(2, sec);
			if (p < end && (*p == '.' || *p == ','))
			{
				int64		scale = 100000;

				p++;
				if (p >= end || *p < '0' || *p > '9')
					return false;
				for (int ndig = 0; p < end && *p >= '0' && *p <= '9'; ndig++, p++)
				{
					if (ndig < 6)
					{
						usec += (*p - '0') * scale;
						scale /= 10;
					}
					else if (ndig == 6 && *p >= '5')
						usec++;		/* round half up, like timestamptz_in */
				}
			}
		}
		if (p < end && (*p == 'Z' || *p == 'z'))
			p++;
		else if (p < end && (*p == '+' || *p == '-'))
		{
			int			sign = (*p++ == '-') ? -1 : 1;
			int			tzh,
						tzm = 0;

			DIGITS(2, tzh);
			if (p < end && *p == ':')
				p++;
			if (p < end)
				DIGITS(2, tzm);
			if (tzh > 15 || tzm > 59)
				return false;
			tzsec = sign * (tzh * 3600 + tzm * 60);
		}
	}
	if (p != end)
		return false;
#undef DIGITS

	if (y < 1 || mo < 1 || mo > 12 || d < 1 ||
		d > day_tab[isleap(y)][mo - 1] || h > 23 || mi > 59 || sec > 59)
		return false;

	*result = ((int64) (date2j(y, mo, d) - POSTGRES_EPOCH_JDATE) * SECS_PER_DAY +
			   h * 3600 + mi * 60 + sec - tzsec) * USECS_PER_SEC + usec;
	return IS_VALID_TIMESTAMP(*result);
}

/* does a timestamp string carry a zone? (for the fallback path) */
static bool
has_zone(const char *s)
{
	const char *t = strpbrk(s, "Tt ");
	size_t		len = strlen(s);

	if (t == NULL)
		return false;			/* a date alone */
	if (len > 0 && (s[len - 1] == 'Z' || s[len - 1] == 'z'))
		return true;
	return strpbrk(t, "+-") != NULL || strstr(t, "UTC") || strstr(t, "GMT");
}

static Datum
convert_timestamp(PsJson *v, PsColumn *col)
{
	int64		ts;

	if (json_object_is_type(v, json_type_string))
	{
		const char *s = json_object_get_string(v);

		if (ps_parse_iso8601(s, json_object_get_string_len(v), &ts))
			return Int64GetDatum(ts);
		/* the general parser, reading zone-less values as UTC */
		if (!has_zone(s))
		{
			Datum		d = DirectFunctionCall3(timestamptz_in,
												CStringGetDatum(psprintf("%s+00", s)),
												ObjectIdGetDatum(InvalidOid),
												Int32GetDatum(-1));

			return d;
		}
		return DirectFunctionCall3(timestamptz_in, CStringGetDatum(json_string_cstring(v, NULL)),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	if (json_object_is_type(v, json_type_int))
	{
		/* seconds since the Unix epoch */
		int64		secs = json_int64_checked(v);

		return DirectFunctionCall1(float8_timestamptz, Float8GetDatum((double) secs));
	}
	conv_error("Postscript value for a timestamp column is not a string%s", "");
	return (Datum) 0;
}

/* ---------------------------------------------------------------- jsonb */

static JsonbValue *push_jsonb(JsonbParseState **st, PsJson *v, JsonbIteratorToken tok);

static void
scalar_jsonb(PsJson *v, JsonbValue *jv)
{
	switch (json_object_get_type(v))
	{
		case json_type_null:
			jv->type = jbvNull;
			break;
		case json_type_boolean:
			jv->type = jbvBool;
			jv->val.boolean = json_object_get_boolean(v);
			break;
		case json_type_int:
			jv->type = jbvNumeric;
			if (json_object_get_int64(v) == PG_INT64_MAX ||
				json_object_get_int64(v) == PG_INT64_MIN)
				jv->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	  CStringGetDatum(json_object_get_string(v)),
																	  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			else
				jv->val.numeric = int64_to_numeric(json_object_get_int64(v));
			break;
		case json_type_double:
			jv->type = jbvNumeric;
			jv->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																  CStringGetDatum(json_text_form(v)),
																  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
			if (numeric_is_nan(jv->val.numeric) || numeric_is_inf(jv->val.numeric))
				conv_error("Postscript sent a number out of range%s", "");
			break;
		case json_type_string:
			{
				int			len;

				jv->type = jbvString;
				jv->val.string.val = json_string_cstring(v, &len);
				jv->val.string.len = len;
				break;
			}
		default:
			elog(ERROR, "unexpected JSON type");
	}
}

static JsonbValue *
push_jsonb(JsonbParseState **st, PsJson *v, JsonbIteratorToken tok)
{
	JsonbValue	jv;

	check_stack_depth();
	if (v != NULL && json_object_is_type(v, json_type_object))
	{
		struct json_object_iterator it = json_object_iter_begin(v);
		struct json_object_iterator itend = json_object_iter_end(v);

		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		for (; !json_object_iter_equal(&it, &itend); json_object_iter_next(&it))
		{
			const char *key = json_object_iter_peek_name(&it);
			JsonbValue	k;

			k.type = jbvString;
			k.val.string.val = pg_any_to_server(key, strlen(key), PG_UTF8);
			k.val.string.len = strlen(k.val.string.val);
			pushJsonbValue(st, WJB_KEY, &k);
			push_jsonb(st, json_object_iter_peek_value(&it), WJB_VALUE);
		}
		return pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
	else if (v != NULL && json_object_is_type(v, json_type_array))
	{
		size_t		n = json_object_array_length(v);

		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (size_t i = 0; i < n; i++)
			push_jsonb(st, json_object_array_get_idx(v, i), WJB_ELEM);
		return pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	else
	{
		if (v == NULL)
			jv.type = jbvNull;
		else
			scalar_jsonb(v, &jv);
		return pushJsonbValue(st, tok, &jv);
	}
}

static Datum
convert_jsonb(PsJson *v)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	if (json_object_is_type(v, json_type_object) ||
		json_object_is_type(v, json_type_array))
	{
		/* the closing push returns the finished container */
		res = push_jsonb(&st, v, WJB_ELEM);
		return JsonbPGetDatum(JsonbValueToJsonb(res));
	}
	else
	{
		/* a scalar: a raw-scalar array, as jsonb stores it */
		JsonbValue	jv;

		scalar_jsonb(v, &jv);
		return JsonbPGetDatum(JsonbValueToJsonb(&jv));
	}
}

/* ---------------------------------------------------------------- arrays */

static Datum
convert_array(PsJson *v, PsColumn *col)
{
	size_t		n;
	Datum	   *elems;
	bool	   *enulls;
	int			dims[1];
	int			lbs[1] = {1};

	if (!json_object_is_type(v, json_type_array))
		conv_error("Postscript value for array column is not a JSON array%s", "");
	n = json_object_array_length(v);
	elems = palloc(sizeof(Datum) * Max(n, 1));
	enulls = palloc(sizeof(bool) * Max(n, 1));
	for (size_t i = 0; i < n; i++)
	{
		PsJson *e = json_object_array_get_idx(v, i);

		enulls[i] = (e == NULL || json_object_is_type(e, json_type_null));
		if (enulls[i])
			elems[i] = (Datum) 0;
		else if (col->elemtype == TEXTOID)
		{
			int			len;
			char	   *s;

			if (json_object_is_type(e, json_type_string))
				s = json_string_cstring(e, &len);
			else
			{
				s = json_text_form(e);
				len = strlen(s);
			}
			elems[i] = PointerGetDatum(cstring_to_text_with_len(s, len));
		}
		else
			elems[i] = InputFunctionCall(&col->elem_infunc, json_text_form(e),
										 col->elem_ioparam, -1);
	}
	dims[0] = (int) n;
	if (n == 0)
		return PointerGetDatum(construct_empty_array(col->elemtype));
	return PointerGetDatum(construct_md_array(elems, enulls, 1, dims, lbs,
											  col->elemtype, col->elem_len,
											  col->elem_byval, col->elem_align));
}

/* ---------------------------------------------------------------- dispatch */

Datum
ps_json_to_datum(PsJson *v, PsColumn *col, bool *isnull)
{
	json_type	jt;

	if (v == NULL || json_object_is_type(v, json_type_null))
	{
		*isnull = true;
		return (Datum) 0;
	}
	*isnull = false;
	if (conv_state)
		conv_state->value = v;
	jt = json_object_get_type(v);

	switch ((PsConvKind) col->conv)
	{
		case PS_CONV_TEXT:
			{
				int			len;
				char	   *s;

				if (jt == json_type_string)
					s = json_string_cstring(v, &len);
				else
				{
					s = json_text_form(v);
					len = strlen(s);
				}
				return PointerGetDatum(cstring_to_text_with_len(s, len));
			}
		case PS_CONV_INT8:
			if (jt == json_type_int)
				return Int64GetDatum(json_int64_checked(v));
			break;
		case PS_CONV_INT4:
			if (jt == json_type_int)
			{
				int64		i = json_int64_checked(v);

				if (i < PG_INT32_MIN || i > PG_INT32_MAX)
					conv_error("Postscript value is out of range for type %s", "integer");
				return Int32GetDatum((int32) i);
			}
			break;
		case PS_CONV_INT2:
			if (jt == json_type_int)
			{
				int64		i = json_int64_checked(v);

				if (i < PG_INT16_MIN || i > PG_INT16_MAX)
					conv_error("Postscript value is out of range for type %s", "smallint");
				return Int16GetDatum((int16) i);
			}
			break;
		case PS_CONV_FLOAT8:
			if (jt == json_type_double || jt == json_type_int)
			{
				double		d = json_object_get_double(v);

				if (isinf(d) || isnan(d))
					conv_error("Postscript value is out of range for type %s", "double precision");
				return Float8GetDatum(d);
			}
			break;
		case PS_CONV_NUMERIC:
			if (jt == json_type_int)
				return NumericGetDatum(int64_to_numeric(json_int64_checked(v)));
			break;
		case PS_CONV_BOOL:
			if (jt == json_type_boolean)
				return BoolGetDatum(json_object_get_boolean(v));
			break;
		case PS_CONV_TIMESTAMPTZ:
		case PS_CONV_TIMESTAMP:
			/* a timestamp without zone holds the UTC wall-clock time */
			return convert_timestamp(v, col);
		case PS_CONV_JSONB:
			return convert_jsonb(v);
		case PS_CONV_JSON:
			return DirectFunctionCall1(json_in, CStringGetDatum(json_text_form(v)));
		case PS_CONV_ARRAY:
			return convert_array(v, col);
		case PS_CONV_GENERIC:
			break;
	}
	/* everything else: the type's input function on the text form */
	if (jt == json_type_object || jt == json_type_array)
	{
		if (col->conv != PS_CONV_GENERIC && col->conv != PS_CONV_TEXT)
			conv_error("Postscript sent a JSON %s where the column expects a scalar",
					   jt == json_type_object ? "object" : "array");
	}
	return InputFunctionCall(&col->infunc, json_text_form(v), col->ioparam, col->typmod);
}

/*
 * Fill values/nulls (indexed by attnum - 1) from one JSON record; columns
 * not in attrs_used (offset by FirstLowInvalidHeapAttributeNumber) are NULL.
 */
void
ps_record_to_values(PsTable *t, PsJson *rec, Datum *values, bool *nulls,
					Bitmapset *attrs_used)
{
	ErrorContextCallback errcb;
	ConvErrorState state;
	bool		all = attrs_used == NULL ||
		bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used);

	memset(nulls, true, sizeof(bool) * t->natts);
	if (!json_object_is_type(rec, json_type_object))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Postscript sent a record of foreign table \"%s\" that is not a JSON object",
						t->relname)));

	state.table = t;
	state.record = rec;
	state.column = NULL;
	state.value = NULL;
	errcb.callback = conv_error_callback;
	errcb.arg = &state;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	conv_state = &state;

	for (int i = 0; i < t->ncolumns; i++)
	{
		PsColumn   *col = &t->columns[i];
		int			idx = col->attnum - 1;

		if (!all && !bms_is_member(col->attnum - FirstLowInvalidHeapAttributeNumber,
								   attrs_used))
			continue;
		state.column = col;
		state.value = NULL;
		values[idx] = ps_json_to_datum(ps_json_lookup(rec, col), col, &nulls[idx]);
	}

	conv_state = NULL;
	error_context_stack = errcb.previous;
}

/* ---------------------------------------------------------------- Datum to JSON */

/* a Datum as a json-c value, for request bodies */
PsJson *
ps_datum_to_json(Datum value, Oid typid)
{
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
			json_tokener *tok = json_tokener_new_ex(64);
			PsJson *o;

			getTypeOutputInfo(typid, &outfunc, &isvarlena);
			s = OidOutputFunctionCall(outfunc, value);
			s = pg_server_to_any(s, strlen(s), PG_UTF8);
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
