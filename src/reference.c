/*-------------------------------------------------------------------------
 *
 * reference.c
 *		The resource catalog of resources.c as rows, for users and for the
 *		documentation: postscript_fdw_resources() (one row per table),
 *		postscript_fdw_columns() (one per column: type, JSON field, the
 *		query parameters its filters become, sort, body key) and
 *		postscript_fdw_writes() (one per INSERT, UPDATE or DELETE: the
 *		request, the required columns, what an unknown outcome becomes).
 *
 * docs/reference.md is rendered from these functions by
 * scripts/gen_reference.sh, and scripts/checks/reference.sh fails when it
 * differs: the reference is the compiled catalog, never a copy of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "postscript_fdw.h"

PG_FUNCTION_INFO_V1(postscript_fdw_resources);
PG_FUNCTION_INFO_V1(postscript_fdw_columns);
PG_FUNCTION_INFO_V1(postscript_fdw_writes);

static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* a text[] of n strings; NULL (SQL NULL) when there are none */
static Datum
text_array(const char **elems, int n, bool *isnull)
{
	Datum	   *d;

	*isnull = (n == 0);
	if (n == 0)
		return (Datum) 0;
	d = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(elems[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* "INSERT", "UPDATE", "DELETE" and their specs, in that order */
static const PsWriteSpec *
write_spec(const PsResource *res, int i, const char **operation)
{
	static const char *const operations[] = {"INSERT", "UPDATE", "DELETE"};

	*operation = operations[i];
	return i == 0 ? res->insert : i == 1 ? res->update : res->del;
}

/* how a written value is checked before it is sent (modify.c), by PsValueKind */
static const char *const value_check[] = {
	[PS_VAL_TEXT] = "not empty",
	[PS_VAL_PHONE] = "normalized to E.164",
	[PS_VAL_EMAIL] = "an email address",
	[PS_VAL_TAGS] = "no NULL or empty tag",
	[PS_VAL_SUBSCRIBER_PROPERTIES] = "an object of at most 50 keys: strings, integers, arrays of strings",
	[PS_VAL_OBJECT] = "a JSON object",
	[PS_VAL_EVENT_PROPERTIES] = "an object of strings, booleans, integers, floats and datetime strings",
	[PS_VAL_EVENT_TYPE] = "letters, digits and underscores",
	[PS_VAL_EVENT_TIME] = "sent in UTC as %Y-%m-%d %H:%M:%S.%f",
	[PS_VAL_CUSTOMER_ID] = "a positive integer",
	[PS_VAL_ORIGIN] = "website, social or other",
};

Datum
postscript_fdw_resources(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int r = 0; r < ps_nresources; r++)
	{
		const PsResource *res = &ps_resources[r];
		Datum		values[9];
		bool		nulls[9] = {0};
		const char *object_path = NULL;

		for (int c = 0; c < res->ncolumns; c++)
			if (res->readable && (res->columns[c].flags & PS_COL_ID))
				object_path = psprintf("%s/{id}", res->path);

		values[0] = CStringGetTextDatum(res->name);
		values[1] = CStringGetTextDatum(res->doc);
		values[2] = BoolGetDatum(res->documented);
		values[3] = BoolGetDatum(res->readable);
		values[4] = CStringGetTextDatum(res->path);
		values[5] = text_or_null(res->records_key, &nulls[5]);
		values[6] = BoolGetDatum(res->paginated);
		values[7] = text_or_null(object_path, &nulls[7]);
		values[8] = text_or_null(res->refused_hint, &nulls[8]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
postscript_fdw_columns(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int r = 0; r < ps_nresources; r++)
	{
		const PsResource *res = &ps_resources[r];

		for (int c = 0; c < res->ncolumns; c++)
		{
			const PsColumnDef *col = &res->columns[c];
			const char **filters = palloc(sizeof(char *) * ps_nfilter_ops);
			const char *written_by[2];
			int			nfilters = 0;
			int			nwritten = 0;
			Datum		values[14];
			bool		nulls[14] = {0};

			for (int i = 0; i < ps_nfilter_ops; i++)
				if (col->filter_ops & ps_filter_ops[i].op)
					filters[nfilters++] = psprintf("%s__%s", col->field,
												   ps_filter_ops[i].suffix);
			if (col->body_key && res->insert)
				written_by[nwritten++] = "INSERT";
			if (col->body_key && res->update && (col->flags & PS_COL_UPDATABLE))
				written_by[nwritten++] = "UPDATE";

			values[0] = CStringGetTextDatum(res->name);
			values[1] = Int32GetDatum(c + 1);
			values[2] = CStringGetTextDatum(col->name);
			values[3] = CStringGetTextDatum(col->type);
			values[4] = CStringGetTextDatum(col->field);
			values[5] = BoolGetDatum(res->readable && (col->flags & PS_COL_ID));
			values[6] = text_array(filters, nfilters, &nulls[6]);
			values[7] = BoolGetDatum(res->paginated && (col->flags & PS_COL_SORTABLE));
			values[8] = BoolGetDatum((col->flags & PS_COL_NULLABLE) != 0);
			values[9] = BoolGetDatum((col->flags & PS_COL_WRITE_ONLY) != 0);
			values[10] = text_or_null(col->body_key, &nulls[10]);
			values[11] = text_array(written_by, nwritten, &nulls[11]);
			Assert(col->value < lengthof(value_check) && value_check[col->value]);
			values[12] = text_or_null(col->body_key ? value_check[col->value] : NULL,
									  &nulls[12]);
			values[13] = CStringGetTextDatum(col->doc);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* the columns written as the comma-separated body keys of a rule */
static char *
rule_columns(const PsResource *res, const char *keys)
{
	StringInfoData buf;
	char	   *list = pstrdup(keys);
	char	   *save = NULL;

	initStringInfo(&buf);
	for (char *key = strtok_r(list, ",", &save); key; key = strtok_r(NULL, ",", &save))
	{
		const char *name = NULL;

		for (int c = 0; c < res->ncolumns && name == NULL; c++)
			if (res->columns[c].body_key && strcmp(res->columns[c].body_key, key) == 0)
				name = res->columns[c].name;
		Assert(name != NULL);
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", name);
	}
	return buf.data;
}

/* a rule as users read it: "phone_number", "exactly one of a, b", ... */
static const char *
rule_text(const PsResource *res, const PsWriteRule *rule)
{
	char	   *cols = rule_columns(res, rule->keys);

	Assert(rule->min <= rule->max && rule->max >= 1);
	if (strchr(rule->keys, ',') == NULL)
	{
		Assert(rule->min == 1);
		return cols;
	}
	if (rule->max == 1)
		return psprintf("%s one of %s", rule->min ? "exactly" : "at most", cols);
	return psprintf("%d to %d of %s", rule->min, rule->max, cols);
}

/* what an unknown outcome becomes (write_queue.c), by PsReconcile */
static const char *const if_outcome_unknown[] = {
	[PS_RECONCILE_NONE] = "an error (40003): it is not sent again",
	[PS_RECONCILE_IDEMPOTENT] = "retried: sending it twice changes nothing",
	[PS_RECONCILE_CONFLICT] = "sent again: a conflict in answer proves the first attempt was applied",
	[PS_RECONCILE_GONE] = "retried: if the retry finds the id unknown, an earlier attempt deleted it (applied)",
};

/* the row RETURNING shows when a write is sent at once, by PsWriteResult */
static const char *const returning_row[] = {
	[PS_RESULT_NONE] = "the row as written",
	[PS_RESULT_OBJECT] = "the object Postscript answers",
	[PS_RESULT_ID_LIST] = "the row as written, with the id Postscript answers",
};

/*
 * Which earlier writes of a commit a write of spec waits for, in words
 * (write_queue.c, may_start)
 */
static char *
waits_for(const PsWriteSpec *spec)
{
	StringInfoData buf;
	int			n = 0;
	int			total = (strstr(spec->path, "{id}") != NULL) ? 1 : 0;

	if (spec->subjects == NULL)
		return pstrdup("every earlier write");
	for (const char *const *k = spec->subjects; *k; k++)
		total++;
	initStringInfo(&buf);
	appendStringInfoString(&buf, "earlier writes of other kinds, and of this kind");
	if (total == 0)
		return buf.data;
	appendStringInfoString(&buf, " with the same ");
	if (strstr(spec->path, "{id}") != NULL)
	{
		appendStringInfoString(&buf, "id");
		n++;
	}
	for (const char *const *k = spec->subjects; *k; k++, n++)
		appendStringInfo(&buf, "%s`%s`", n == 0 ? "" : n == total - 1 ? " or " : ", ", *k);
	return buf.data;
}

Datum
postscript_fdw_writes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int r = 0; r < ps_nresources; r++)
	{
		const PsResource *res = &ps_resources[r];

		for (int i = 0; i < 3; i++)
		{
			const char *operation;
			const PsWriteSpec *spec = write_spec(res, i, &operation);
			const char **rules;
			Datum		values[8];
			bool		nulls[8] = {0};

			if (spec == NULL)
				continue;
			rules = palloc(sizeof(char *) * Max(spec->nrules, 1));
			for (int k = 0; k < spec->nrules; k++)
				rules[k] = rule_text(res, &spec->rules[k]);

			values[0] = CStringGetTextDatum(res->name);
			values[1] = CStringGetTextDatum(operation);
			values[2] = CStringGetTextDatum(spec->method);
			values[3] = CStringGetTextDatum(spec->path);
			values[4] = text_array(rules, spec->nrules, &nulls[4]);
			Assert(spec->reconcile < lengthof(if_outcome_unknown) &&
				   spec->result < lengthof(returning_row));
			values[5] = CStringGetTextDatum(if_outcome_unknown[spec->reconcile]);
			values[6] = CStringGetTextDatum(returning_row[spec->result]);
			values[7] = CStringGetTextDatum(waits_for(spec));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
