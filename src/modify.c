/*-------------------------------------------------------------------------
 *
 * modify.c
 *		INSERT and UPDATE: rows to Postscript write requests.
 *
 * Every row is checked before anything is sent for it (phone numbers are
 * normalized to E.164, emails, tags, properties and event types are
 * checked); a bad row is an error that names the row and the column, and
 * no request is made for it.
 *
 * Requests are sent one row at a time through the connection's rate limit.
 * Retrying never duplicates a write: http.c retries what surely was not
 * applied (429, a connection that could not be made) and reports a POST
 * whose outcome is unknown (a timeout after sending, a 5xx) as
 * maybe_applied; a subscriber creation is then reconciled here by looking
 * the phone number up among pending opt-ins and subscribers, and sent again
 * only when neither shows it.  An event cannot be looked up, so an event
 * whose outcome is unknown is an error (40003) and is never resent.  The
 * PATCH requests (unsubscribe, subscriber update) are idempotent and are
 * retried like reads.
 *
 * Writes reach Postscript as the statement runs; ROLLBACK does not undo
 * them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "postscript_fdw.h"
#include "phone.h"

/* name of the junk column that carries the row's id into UPDATE */
#define ID_JUNK_NAME "postscript_id"

/* Postscript's limit on properties per subscriber */
#define MAX_PROPERTIES 50

/* indexes into the fdw_private list of PlanForeignModify */
enum ModifyPrivate
{
	MP_OPERATION,				/* Integer: CmdType */
	MP_UPDATED,					/* List of Integer: attnums an UPDATE sets */
	MP_SKIP_CONFLICTS			/* Integer: ON CONFLICT DO NOTHING */
};

/* what a body key holds, for validation */
typedef enum WriteRole
{
	ROLE_TEXT,					/* a non-empty string */
	ROLE_PHONE,
	ROLE_EMAIL,
	ROLE_TAGS,
	ROLE_PROPERTIES,
	ROLE_EVENT_TYPE,
	ROLE_TIMESTAMP,
	ROLE_CUSTOMER_ID
} WriteRole;

/* one column a write sends */
typedef struct WriteCol
{
	PsColumn   *col;
	const char *key;			/* body key */
	WriteRole	role;
} WriteCol;

typedef struct PsModifyState
{
	PsTable    *table;
	PsConn	   *conn;
	CmdType		op;
	PsWriteKind kind;
	const char *method;
	const char *path;			/* UPDATE: with {id} */
	char	   *what;			/* "INSERT into \"subscribers\"", for errors */
	WriteCol   *wcols;
	int			nwcols;
	bool		skip_conflicts; /* ON CONFLICT DO NOTHING: a 409 skips */
	bool		check_given;	/* refuse values in columns not sent */
	int			batch_size;
	AttrNumber	id_junk;		/* UPDATE: the id junk column */
	MemoryContext temp_cxt;		/* one row (or one batch) at a time */

	int64		rowno;			/* rows of the statement seen so far */
	int64		current_row;	/* the row being sent, for errcontext */

	/* for EXPLAIN ANALYZE and error hints */
	int64		requests;
	int64		written;
	int64		skipped;
	int64		reconciled;
	int64		retries;
} PsModifyState;

/* one validated row, ready to send */
typedef struct PendingRow
{
	int64		rowno;
	PsJson	   *body;
	char	   *phone;			/* normalized phone number, or NULL */
	Datum	   *values;			/* the row as given (phone normalized) */
	bool	   *nulls;
} PendingRow;

/* ---------------------------------------------------------------- helpers */

static void
json_put_callback(void *arg)
{
	json_object_put((PsJson *) arg);
}

/* hand a json-c tree to the current memory context: freed on its reset */
static PsJson *
own_json(PsJson *obj)
{
	MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

	if (obj == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	cb->func = json_put_callback;
	cb->arg = obj;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return obj;
}

static WriteRole
role_of(const char *key)
{
	if (strcmp(key, "phone_number") == 0 || strcmp(key, "phone") == 0)
		return ROLE_PHONE;
	if (strcmp(key, "email") == 0)
		return ROLE_EMAIL;
	if (strcmp(key, "tags") == 0)
		return ROLE_TAGS;
	if (strcmp(key, "properties") == 0)
		return ROLE_PROPERTIES;
	if (strcmp(key, "type") == 0)
		return ROLE_EVENT_TYPE;
	if (strcmp(key, "occurred_at") == 0)
		return ROLE_TIMESTAMP;
	if (strcmp(key, "shopify_customer_id") == 0)
		return ROLE_CUSTOMER_ID;
	return ROLE_TEXT;
}

static const char *
op_verb(CmdType op)
{
	switch (op)
	{
		case CMD_INSERT:
			return "insert into";
		case CMD_UPDATE:
			return "update";
		default:
			return "delete from";
	}
}

/* the column of the table that a body key comes from, or the key */
static const char *
key_column(PsModifyState *st, const char *key)
{
	for (int i = 0; i < st->nwcols; i++)
		if (strcmp(st->wcols[i].key, key) == 0)
			return st->wcols[i].col->name;
	return key;
}

/* 'column "x"', for row errors */
static char *
in_column(const char *name)
{
	return psprintf("column \"%s\"", name);
}

/* a bad row: nothing was sent for it; where is 'column "x"' or the like */
static void
row_error(PsModifyState *st, int64 rowno, int code, const char *msg,
		  const char *where, const char *detail)
{
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s in %s, row %lld of %s", msg, where,
					(long long) rowno, st->what),
			 errdetail_internal("%s", detail),
			 st->written > 0
			 ? errhint_plural("No request was sent for this row. The %lld row before it that Postscript accepted stays written: ROLLBACK does not undo it.",
							  "No request was sent for this row. The %lld rows before it that Postscript accepted stay written: ROLLBACK does not undo them.",
							  (unsigned long) st->written, (long long) st->written)
			 : errhint("No request was sent for this row.")));
}

static char *
datum_text(Datum value, Oid typid)
{
	Oid			outfunc;
	bool		isvarlena;

	getTypeOutputInfo(typid, &outfunc, &isvarlena);
	return OidOutputFunctionCall(outfunc, value);
}

static void
add_string(PsJson *body, const char *key, const char *s)
{
	json_object_object_add(body, key,
						   json_object_new_string(pg_server_to_any(s, strlen(s), PG_UTF8)));
}

/* ---------------------------------------------------------------- validation */

/* NULL if s looks like an email address, else why not */
static const char *
email_problem(const char *s)
{
	const char *at = strchr(s, '@');
	const char *domain;
	const char *label;
	size_t		len = strlen(s);
	bool		tld_alpha = false;

	if (len > 254)
		return "is longer than 254 characters";
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || strchr("\"(),:;<>[\\]", *p) != NULL)
			return "contains a space, a control character or one of \" ( ) , : ; < > [ \\ ]";
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return "must contain exactly one @";
	if (at == s || at - s > 64)
		return "must have 1 to 64 characters before the @";
	if (s[0] == '.' || at[-1] == '.' || strstr(s, "..") != NULL)
		return "has a dot at the start or end of its local part, or two dots in a row";
	domain = at + 1;
	if (strchr(domain, '.') == NULL)
		return "has a domain without a dot";
	label = domain;
	for (const char *p = domain;; p++)
	{
		if (*p == '.' || *p == '\0')
		{
			size_t		llen = p - label;

			if (llen == 0 || llen > 63)
				return "has an empty or overlong domain label";
			if (label[0] == '-' || p[-1] == '-')
				return "has a domain label starting or ending with a hyphen";
			tld_alpha = false;
			for (const char *q = label; q < p; q++)
				if (!isdigit((unsigned char) *q) && *q != '-')
					tld_alpha = true;
			if (*p == '\0')
				break;
			label = p + 1;
		}
		else if (!isalnum((unsigned char) *p) && *p != '-' && !IS_HIGHBIT_SET(*p))
			return "has a domain with a character other than letters, digits, hyphens and dots";
	}
	if (strlen(label) < 2 || !tld_alpha)
		return "has a top-level domain that is not a name of at least 2 characters";
	return NULL;
}

static bool
scalar_json(PsJson *v)
{
	return v == NULL || json_object_is_type(v, json_type_string) ||
		json_object_is_type(v, json_type_int) ||
		json_object_is_type(v, json_type_double) ||
		json_object_is_type(v, json_type_boolean);
}

/*
 * NULL if v is a properties object Postscript takes: at most 50 keys, each
 * non-empty, holding a string, number, boolean, null, or an array of
 * strings, numbers and booleans.
 */
static const char *
properties_problem(PsJson *v)
{
	struct json_object_iterator it;
	struct json_object_iterator end;
	int			n;

	if (v == NULL || !json_object_is_type(v, json_type_object))
		return pstrdup("must be a JSON object");
	n = json_object_object_length(v);
	if (n > MAX_PROPERTIES)
		return psprintf("has %d keys; Postscript takes at most %d", n, MAX_PROPERTIES);
	it = json_object_iter_begin(v);
	end = json_object_iter_end(v);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
	{
		const char *key = json_object_iter_peek_name(&it);
		PsJson	   *val = json_object_iter_peek_value(&it);

		if (key[0] == '\0')
			return pstrdup("has an empty key");
		if (val != NULL && json_object_is_type(val, json_type_array))
		{
			for (size_t i = 0; i < json_object_array_length(val); i++)
			{
				PsJson	   *e = json_object_array_get_idx(val, i);

				if (e == NULL || !scalar_json(e))
					return psprintf("has key \"%s\" holding an array with a null, an object or an array in it; arrays may hold strings, numbers and booleans", key);
			}
		}
		else if (!scalar_json(val))
			return psprintf("has key \"%s\" holding an object; values may be strings, numbers, booleans, null or arrays of strings, numbers and booleans", key);
	}
	return NULL;
}

/* NULL if v is a tag list: an array of non-empty strings */
static const char *
tags_problem(PsJson *v)
{
	if (v == NULL || !json_object_is_type(v, json_type_array))
		return "must be an array of text";
	for (size_t i = 0; i < json_object_array_length(v); i++)
	{
		PsJson	   *e = json_object_array_get_idx(v, i);

		if (e == NULL || !json_object_is_type(e, json_type_string))
			return "must not contain a NULL";
		if (json_object_get_string_len(e) == 0)
			return "must not contain an empty tag";
	}
	return NULL;
}

/*
 * Check one column's value and add it to the body.  Returns the normalized
 * phone number for a phone column, else NULL.
 */
static char *
add_value(PsModifyState *st, PsJson *body, WriteCol *wc, Datum value,
		  int64 rowno)
{
	PsColumn   *col = wc->col;
	char	   *s;
	const char *why;

	switch (wc->role)
	{
		case ROLE_PHONE:
			{
				char		e164[PS_PHONE_MAXLEN];
				const char *country = st->table->sopts->default_country;

				s = datum_text(value, col->typid);
				if (ps_phone_normalize(s, country, e164, sizeof(e164), &why) != 0)
					row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
							  "invalid phone number", in_column(col->name),
							  psprintf("The value \"%s\" %s (numbers without + or 00 are read as numbers of %s, the server's default_country).",
									   s, why, country));
				add_string(body, wc->key, e164);
				return pstrdup(e164);
			}
		case ROLE_EMAIL:
			s = datum_text(value, col->typid);
			if ((why = email_problem(s)) != NULL)
				row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
						  "invalid email address", in_column(col->name),
						  psprintf("The value \"%s\" %s.", s, why));
			add_string(body, wc->key, s);
			return NULL;
		case ROLE_EVENT_TYPE:
			s = datum_text(value, col->typid);
			if (s[0] == '\0' || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(s))
				row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
						  "invalid event type", in_column(col->name),
						  psprintf("The value \"%s\" must be one or more letters, digits and underscores.", s));
			add_string(body, wc->key, s);
			return NULL;
		case ROLE_CUSTOMER_ID:
			s = datum_text(value, col->typid);
			if (s[0] == '\0' || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s) ||
				strspn(s, "0") == strlen(s))
				row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
						  "invalid Shopify customer id", in_column(col->name),
						  psprintf("The value \"%s\" must be a positive integer.", s));
			json_object_object_add(body, wc->key,
								   json_object_new_int64(strtoll(s, NULL, 10)));
			return NULL;
		case ROLE_TIMESTAMP:
			{
				PsJson	   *j;
				int64		ts;

				if (col->typid == TIMESTAMPTZOID || col->typid == TIMESTAMPOID)
				{
					json_object_object_add(body, wc->key, ps_datum_to_json(value, col->typid));
					return NULL;
				}
				s = datum_text(value, col->typid);
				if (!ps_parse_iso8601(s, strlen(s), &ts))
					row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
							  "invalid timestamp", in_column(col->name),
							  psprintf("The value \"%s\" must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z.", s));
				j = ps_datum_to_json(TimestampTzGetDatum(ts), TIMESTAMPTZOID);
				json_object_object_add(body, wc->key, j);
				return NULL;
			}
		case ROLE_TAGS:
		case ROLE_PROPERTIES:
			{
				PsJson	   *j = ps_datum_to_json(value, col->typid);
				const char *what = wc->role == ROLE_TAGS ? "tags" : "properties";
				const char *problem;

				/* owned by the body from here on, checked there */
				json_object_object_add(body, wc->key, j);
				problem = wc->role == ROLE_TAGS ? tags_problem(j) : properties_problem(j);
				if (problem != NULL)
					row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
							  psprintf("invalid %s", what), in_column(col->name),
							  psprintf("The value %s.", problem));
				return NULL;
			}
		case ROLE_TEXT:
			s = datum_text(value, col->typid);
			if (s[0] == '\0')
				row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
						  "empty value", in_column(col->name),
						  "The value must not be an empty string.");
			add_string(body, wc->key, s);
			return NULL;
	}
	return NULL;
}

/*
 * Of the body keys in keys, at least min and at most max must be given.
 */
static void
require(PsModifyState *st, PsJson *body, int64 rowno, int min, int max,
		const char *const *keys, int nkeys)
{
	StringInfoData names;
	char	   *where;
	int			given = 0;

	initStringInfo(&names);
	for (int i = 0; i < nkeys; i++)
	{
		appendStringInfo(&names, "%s\"%s\"", i == 0 ? "" : (i == nkeys - 1 ? " or " : ", "),
						 key_column(st, keys[i]));
		if (json_object_object_get_ex(body, keys[i], NULL))
			given++;
	}
	where = nkeys == 1 ? psprintf("column %s", names.data)
		: psprintf("columns %s", names.data);
	if (given < min)
		row_error(st, rowno, ERRCODE_NOT_NULL_VIOLATION, "missing value", where,
				  psprintf("%s %s needs a value in %s.", st->method, st->path,
						   nkeys == 1 ? where : psprintf("one of the %s", where)));
	if (given > max)
		row_error(st, rowno, ERRCODE_INVALID_PARAMETER_VALUE,
				  "more than one value given", where,
				  psprintf("Give a value in only one of the %s.", where));
}

/*
 * Validate one row and build its request body; raises an error naming the
 * row and column for anything Postscript would not take.
 */
static void
build_row(PsModifyState *st, TupleTableSlot *slot, PendingRow *row)
{
	TupleDesc	tupdesc = slot->tts_tupleDescriptor;
	int			natts = tupdesc->natts;
	PsJson	   *body = own_json(json_object_new_object());
	static const char *const keyword_keys[] = {"keyword_id", "keyword"};
	static const char *const phone_keys[] = {"phone_number"};
	static const char *const type_keys[] = {"type"};
	static const char *const unsubscribe_keys[] = {"postscript_subscriber_id", "phone_number"};
	static const char *const event_keys[] = {"subscriber_id", "phone", "email"};

	/* a private copy of the row: RETURNING shows it where the API is silent */
	slot_getallattrs(slot);
	row->values = palloc(sizeof(Datum) * natts);
	row->nulls = palloc(sizeof(bool) * natts);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		row->nulls[i] = slot->tts_isnull[i];
		row->values[i] = row->nulls[i] ? (Datum) 0
			: datumCopy(slot->tts_values[i], att->attbyval, att->attlen);
	}
	row->body = body;
	row->phone = NULL;

	for (int i = 0; st->check_given && i < st->table->ncolumns; i++)
	{
		PsColumn   *col = &st->table->columns[i];

		if (!row->nulls[col->attnum - 1] &&
			(col->def == NULL || col->def->body_key == NULL))
			row_error(st, row->rowno, ERRCODE_FEATURE_NOT_SUPPORTED,
					  "value that cannot be written", in_column(col->name),
					  "Postscript sets this column; leave it empty.");
	}

	for (int i = 0; i < st->nwcols; i++)
	{
		WriteCol   *wc = &st->wcols[i];
		int			idx = wc->col->attnum - 1;
		char	   *phone;

		if (row->nulls[idx])
		{
			if (st->op != CMD_UPDATE)
				continue;		/* not sent */
			if (wc->role != ROLE_EMAIL)
				row_error(st, row->rowno, ERRCODE_NOT_NULL_VIOLATION,
						  "NULL value", in_column(wc->col->name),
						  "Postscript adds tags and merges properties: an UPDATE cannot set them to NULL.");
			json_object_object_add(body, wc->key, NULL);
			continue;
		}
		phone = add_value(st, body, wc, row->values[idx], row->rowno);
		if (phone != NULL)
		{
			row->phone = phone;
			if (wc->col->typid == TEXTOID || wc->col->typid == VARCHAROID)
				row->values[idx] = CStringGetTextDatum(phone);
		}
	}

	switch (st->kind)
	{
		case PS_WRITE_CREATE_SUBSCRIBER:
			require(st, body, row->rowno, 1, 1, phone_keys, 1);
			require(st, body, row->rowno, 0, 1, keyword_keys, 2);
			break;
		case PS_WRITE_OPT_IN:
			require(st, body, row->rowno, 1, 1, phone_keys, 1);
			require(st, body, row->rowno, 1, 1, keyword_keys, 2);
			break;
		case PS_WRITE_UNSUBSCRIBE:
			require(st, body, row->rowno, 1, 1, unsubscribe_keys, 2);
			break;
		case PS_WRITE_EVENT:
			require(st, body, row->rowno, 1, 1, type_keys, 1);
			require(st, body, row->rowno, 1, 1, event_keys, 3);
			break;
		case PS_WRITE_PATCH_SUBSCRIBER:
		case PS_WRITE_NONE:
			break;
	}
}

/* ---------------------------------------------------------------- results */

/* value of a string member, or NULL */
static const char *
member_string(PsJson *obj, const char *key)
{
	PsJson	   *v;

	if (obj != NULL && json_object_is_type(obj, json_type_object) &&
		json_object_object_get_ex(obj, key, &v) && v != NULL &&
		json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* copy member key of from into to (as to_key), if present */
static void
copy_member(PsJson *to, const char *to_key, PsJson *from, const char *key)
{
	PsJson	   *v;

	if (json_object_object_get_ex(from, key, &v))
		json_object_object_add(to, to_key, json_object_get(v));
}

/*
 * A subscriber object (the POST response, or a subscriber found while
 * reconciling) as a row of the table written: for opt_ins, subscriber_id is
 * the subscriber's id and status says whether it is pending.
 */
static PsJson *
result_from_subscriber(PsModifyState *st, PsJson *sub)
{
	PsJson	   *pending;
	bool		is_pending;

	if (st->kind != PS_WRITE_OPT_IN)
		return sub;
	is_pending = json_object_object_get_ex(sub, "is_pending", &pending) &&
		json_object_get_boolean(pending);
	copy_member(sub, "subscriber_id", sub, "id");
	json_object_object_add(sub, "status",
						   json_object_new_string(is_pending ? "pending" : "confirmed"));
	return sub;
}

/*
 * A pending opt-in found while reconciling, as the row the POST would have
 * returned: its id is the pending subscriber's id, as after a plain INSERT.
 */
static PsJson *
result_from_opt_in(PsModifyState *st, PsJson *oi)
{
	PsJson	   *res;

	if (st->kind == PS_WRITE_OPT_IN)
	{
		copy_member(oi, "id", oi, "subscriber_id");
		return oi;
	}
	res = own_json(json_object_new_object());
	copy_member(res, "id", oi, "subscriber_id");
	copy_member(res, "phone_number", oi, "phone_number");
	copy_member(res, "keyword_id", oi, "keyword_id");
	copy_member(res, "created_at", oi, "created_at");
	json_object_object_add(res, "is_pending", json_object_new_boolean(1));
	return res;
}

/*
 * Put the API's answer into the slot, for RETURNING and triggers: the
 * values the API returned, and for columns it leaves out the values given.
 */
static void
fill_slot(PsModifyState *st, TupleTableSlot *slot, PendingRow *row, PsJson *rec)
{
	int			natts = slot->tts_tupleDescriptor->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	if (rec != NULL && json_object_is_type(rec, json_type_object))
		ps_record_to_values(st->table, rec, values, nulls, NULL);
	else
		memset(nulls, true, sizeof(bool) * natts);
	for (int i = 0; i < natts; i++)
		if (nulls[i] && !row->nulls[i])
		{
			values[i] = row->values[i];
			nulls[i] = false;
		}
	ExecClearTuple(slot);
	memcpy(slot->tts_values, values, sizeof(Datum) * natts);
	memcpy(slot->tts_isnull, nulls, sizeof(bool) * natts);
	ExecStoreVirtualTuple(slot);
}

/* ---------------------------------------------------------------- sending */

static void
row_context_callback(void *arg)
{
	PsModifyState *st = (PsModifyState *) arg;

	errcontext("row %lld of %s", (long long) st->current_row, st->what);
}

static PsJson *
get_json(PsModifyState *st, const char *path)
{
	PsHttpResult res;

	ps_http_request(st->conn, "GET", path, NULL, 0, &res);
	st->requests++;
	st->retries += res.retries;
	return ps_parse_json(res.body, res.len, st->conn->opts->max_json_depth, "GET", path);
}

/* the records array of a list response, or NULL */
static PsJson *
records_of(PsJson *root, const char *key)
{
	PsJson	   *recs;

	if (json_object_is_type(root, json_type_object) &&
		json_object_object_get_ex(root, key, &recs) &&
		json_object_is_type(recs, json_type_array))
		return recs;
	return NULL;
}

/*
 * After a subscriber creation whose outcome is unknown: is the phone number
 * now a pending opt-in or a subscriber?  Pending subscribers are not listed
 * by GET /subscribers, so the opt-in log is asked first.  Returns the row as
 * the POST would have, or NULL if Postscript shows neither.
 */
static PsJson *
find_created(PsModifyState *st, const char *phone)
{
	const PsResource *oi = ps_resource_by_name("opt_ins");
	const PsResource *sub = ps_resource_by_name("subscribers");
	char	   *q = ps_url_encode(phone);
	PsJson	   *recs;

	recs = records_of(get_json(st, psprintf("%s?phone_number__eq=%s&sort=created_at__desc",
											oi->path, q)),
					  oi->records_key);
	for (size_t i = 0; recs && i < json_object_array_length(recs); i++)
	{
		PsJson	   *rec = json_object_array_get_idx(recs, i);
		const char *status = member_string(rec, "status");

		if (status && strcmp(status, "pending") == 0 &&
			member_string(rec, "subscriber_id") != NULL)
			return result_from_opt_in(st, rec);
	}

	recs = records_of(get_json(st, psprintf("%s?phone_number__eq=%s", sub->path, q)),
					  sub->records_key);
	if (recs && json_object_array_length(recs) > 0)
		return result_from_subscriber(st, json_object_array_get_idx(recs, 0));
	return NULL;
}

/* the event id out of {"event_ids": ["..."]} as the row's id */
static PsJson *
result_from_event(PsJson *resp)
{
	PsJson	   *ids;
	PsJson	   *res = own_json(json_object_new_object());

	if (json_object_is_type(resp, json_type_object) &&
		json_object_object_get_ex(resp, "event_ids", &ids) &&
		json_object_is_type(ids, json_type_array) &&
		json_object_array_length(ids) > 0)
		json_object_object_add(res, "id",
							   json_object_get(json_object_array_get_idx(ids, 0)));
	return res;
}

static PsJson *
parse_response(PsModifyState *st, PsHttpResult *res, const char *method, const char *path)
{
	if (res->len == 0)
		return own_json(json_object_new_object());
	return ps_parse_json(res->body, res->len, st->conn->opts->max_json_depth, method, path);
}

/*
 * Send one validated INSERT row.  Returns the row to show for it, or NULL
 * when ON CONFLICT DO NOTHING skips it.
 */
static PsJson *
send_insert(PsModifyState *st, PendingRow *row)
{
	const char *body = json_object_to_json_string_ext(row->body, JSON_C_TO_STRING_PLAIN);
	bool		creates = st->kind == PS_WRITE_CREATE_SUBSCRIBER ||
		st->kind == PS_WRITE_OPT_IN;
	int			flags;
	PsHttpResult res;
	PsJson	   *rec;

	/* unsubscribing is idempotent: retried like a read */
	if (st->kind == PS_WRITE_UNSUBSCRIBE)
		flags = 0;
	else if (creates)
		flags = PS_HTTP_WRITE | PS_HTTP_ALLOW_409;
	else
		flags = PS_HTTP_WRITE;

	for (int attempt = 0;; attempt++)
	{
		ps_http_request(st->conn, st->method, st->path, body, flags, &res);
		st->requests++;
		st->retries += res.retries;
		if (!res.maybe_applied)
			break;

		if (!creates)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
					 errmsg("Postscript may or may not have recorded the event"),
					 res.status
					 ? errdetail("%s %s answered HTTP %ld.", st->method, st->path, res.status)
					 : errdetail("%s %s failed after the request was sent: %s.",
								 st->method, st->path, res.body),
					 st->written > 0
					 ? errhint("Events cannot be read back, so it was not sent again (that could record it twice). The rows before it were recorded; ROLLBACK does not undo them.")
					 : errhint("Events cannot be read back, so it was not sent again (that could record it twice).")));

		/* the subscriber may exist now: look before sending again */
		rec = find_created(st, row->phone);
		if (rec != NULL)
		{
			st->reconciled++;
			return rec;
		}
		if (attempt >= st->conn->opts->max_retries)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Postscript failed to create the subscriber"),
					 res.status
					 ? errdetail("%s %s answered HTTP %ld %d times, and neither the opt-ins nor the subscribers show %s, so it was not created.",
								 st->method, st->path, res.status, attempt + 1, row->phone)
					 : errdetail("%s %s failed %d times (%s), and neither the opt-ins nor the subscribers show %s, so it was not created.",
								 st->method, st->path, attempt + 1, res.body, row->phone)));
	}

	if (res.status == 409)
	{
		if (st->skip_conflicts)
		{
			st->skipped++;
			return NULL;
		}
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("phone number %s is already a Postscript subscriber", row->phone),
				 errdetail("HTTP 409: %s",
						   ps_api_error_message(res.body, res.len) ? ps_api_error_message(res.body, res.len) : "conflict"),
				 errhint("INSERT ... ON CONFLICT DO NOTHING skips numbers that are already subscribers.")));
	}

	rec = parse_response(st, &res, st->method, st->path);
	if (st->kind == PS_WRITE_EVENT)
		return result_from_event(rec);
	if (creates)
		return result_from_subscriber(st, rec);
	return rec;
}

/* ---------------------------------------------------------------- planning */

static int
postscriptIsForeignRelUpdatable(Relation rel)
{
	PsTable    *t = ps_get_table(RelationGetRelid(rel));

	return (t->res->insert_kind != PS_WRITE_NONE ? (1 << CMD_INSERT) : 0) |
		(t->res->update_kind != PS_WRITE_NONE ? (1 << CMD_UPDATE) : 0);
}

/* the column holding the object's id */
static PsColumn *
id_column(PsTable *t)
{
	for (int i = 0; i < t->ncolumns; i++)
		if (t->columns[i].def && (t->columns[i].def->flags & PS_COL_ID))
			return &t->columns[i];
	return NULL;
}

/* UPDATE finds the row to PATCH by its id, fetched by the scan */
static void
postscriptAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
								  RangeTblEntry *target_rte, Relation target_relation)
{
	PsTable    *t;
	PsColumn   *col;
	Var		   *var;

	if (root->parse->commandType != CMD_UPDATE)
		return;
	t = ps_get_table(RelationGetRelid(target_relation));
	if (t->res->update_kind == PS_WRITE_NONE)
		return;					/* refused by PlanForeignModify */
	col = id_column(t);
	if (col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("foreign table \"%s\" has no id column, which UPDATE needs", t->relname),
				 errhint("Add a column \"id text\": it names the object to PATCH.")));
	var = makeVar(rtindex, col->attnum, col->typid, col->typmod,
				  TupleDescAttr(RelationGetDescr(target_relation), col->attnum - 1)->attcollation,
				  0);
	add_row_identity_var(root, var, rtindex, ID_JUNK_NAME);
}

static void
refuse(PsTable *t, CmdType op)
{
	const char *hint = t->res->delete_hint;

	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot %s foreign table \"%s\"", op_verb(op), t->relname),
			 errdetail("Postscript's API has no %s for %s.",
					   op == CMD_INSERT ? "create" : op == CMD_UPDATE ? "update" : "delete",
					   t->res->name),
			 hint ? errhint("%s", hint) : 0));
}

/* "phone_number, email, ..." : the columns with a given property */
static char *
column_list(PsTable *t, bool updatable)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < t->ncolumns; i++)
	{
		const PsColumnDef *d = t->columns[i].def;

		if (d && d->body_key && (!updatable || (d->flags & PS_COL_UPDATABLE)))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", t->columns[i].name);
	}
	return buf.data;
}

static List *
postscriptPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
							Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	PsTable    *t = ps_get_table(rte->relid);
	List	   *updated = NIL;
	int			k = -1;

	switch (plan->operation)
	{
		case CMD_INSERT:
			if (t->res->insert_kind == PS_WRITE_NONE)
				refuse(t, CMD_INSERT);
			while ((k = bms_next_member(ps_inserted_cols(root, rte), k)) >= 0)
			{
				PsColumn   *col = ps_table_column(t, k + FirstLowInvalidHeapAttributeNumber);

				if (col && (col->def == NULL || col->def->body_key == NULL))
					ereport(ERROR,
							(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							 errmsg("column \"%s\" of foreign table \"%s\" cannot be written",
									col->name, t->relname),
							 errdetail("Postscript sets it; an INSERT can give %s.",
									   column_list(t, false))));
			}
			break;
		case CMD_UPDATE:
			if (t->res->update_kind == PS_WRITE_NONE)
				refuse(t, CMD_UPDATE);
			{
				Bitmapset  *cols = get_rel_all_updated_cols(root, find_base_rel(root, resultRelation));

				while ((k = bms_next_member(cols, k)) >= 0)
				{
					AttrNumber	attnum = k + FirstLowInvalidHeapAttributeNumber;
					PsColumn   *col = ps_table_column(t, attnum);

					if (col == NULL)
						continue;
					if (col->def == NULL || col->def->body_key == NULL ||
						!(col->def->flags & PS_COL_UPDATABLE))
						ereport(ERROR,
								(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
								 errmsg("column \"%s\" of foreign table \"%s\" cannot be updated",
										col->name, t->relname),
								 errdetail("Postscript's %s %s can change %s.",
										   t->res->update_method, t->res->update_path,
										   column_list(t, true))));
					updated = lappend(updated, makeInteger(attnum));
				}
			}
			break;
		default:
			refuse(t, plan->operation);
	}
	return list_make3(makeInteger(plan->operation), updated,
					  makeInteger(plan->onConflictAction == ONCONFLICT_NOTHING));
}

/* ---------------------------------------------------------------- execution */

/*
 * Executor state for writes to rinfo: what each row becomes and which
 * columns are sent.  updated: the attnums an UPDATE sets.
 */
static PsModifyState *
init_state(EState *estate, ResultRelInfo *rinfo, CmdType op, List *updated,
		   bool skip_conflicts, bool explain_only)
{
	PsModifyState *st = palloc0(sizeof(PsModifyState));
	PsTable    *t = ps_get_table(RelationGetRelid(rinfo->ri_RelationDesc));

	rinfo->ri_FdwState = st;
	st->table = t;
	st->op = op;
	st->skip_conflicts = skip_conflicts;
	st->batch_size = t->sopts->batch_size;
	if (st->op == CMD_INSERT)
	{
		st->kind = t->res->insert_kind;
		st->method = t->res->insert_method;
		st->path = t->res->insert_path;
		st->what = psprintf("INSERT into \"%s\"", t->relname);
	}
	else
	{
		st->kind = t->res->update_kind;
		st->method = t->res->update_method;
		st->path = t->res->update_path;
		st->what = psprintf("UPDATE of \"%s\"", t->relname);
	}

	/* the columns sent: every writable one, or those the UPDATE sets */
	st->wcols = palloc0(sizeof(WriteCol) * Max(t->ncolumns, 1));
	for (int i = 0; i < t->ncolumns; i++)
	{
		PsColumn   *col = &t->columns[i];

		if (col->def == NULL || col->def->body_key == NULL)
			continue;
		if (st->op == CMD_UPDATE)
		{
			bool		set = false;
			ListCell   *lc;

			foreach(lc, updated)
				set |= intVal(lfirst(lc)) == col->attnum;
			if (!set)
				continue;
		}
		st->wcols[st->nwcols].col = col;
		st->wcols[st->nwcols].key = col->def->body_key;
		st->wcols[st->nwcols].role = role_of(col->def->body_key);
		st->nwcols++;
	}

	if (explain_only)
		return st;

	st->conn = ps_get_connection(t->serverid, ps_modify_user(rinfo, estate));
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw modify",
										 ALLOCSET_DEFAULT_SIZES);
	return st;
}

static void
postscriptBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
							 List *fdw_private, int subplan_index, int eflags)
{
	PsModifyState *st;

	st = init_state(mtstate->ps.state, rinfo,
					(CmdType) intVal(list_nth(fdw_private, MP_OPERATION)),
					list_nth(fdw_private, MP_UPDATED),
					intVal(list_nth(fdw_private, MP_SKIP_CONFLICTS)) != 0,
					(eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
	if (st->op == CMD_UPDATE && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		st->id_junk = ExecFindJunkAttributeInTlist(outerPlanState(mtstate)->plan->targetlist,
												   ID_JUNK_NAME);
		if (!AttributeNumberIsValid(st->id_junk))
			elog(ERROR, "could not find junk column %s", ID_JUNK_NAME);
	}
}

/*
 * COPY FROM, and INSERT routed to a foreign partition: PlanForeignModify
 * did not see the statement, so the columns given are checked row by row.
 * (PostgreSQL itself refuses tables that IsForeignRelUpdatable says take
 * no INSERT.)
 */
static void
postscriptBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	ModifyTable *plan = (ModifyTable *) mtstate->ps.plan;
	PsModifyState *st;

	st = init_state(mtstate->ps.state, rinfo, CMD_INSERT, NIL,
					plan != NULL && plan->onConflictAction == ONCONFLICT_NOTHING,
					false);
	st->check_given = true;
}

/* send the rows of a batch, validated already; returns how many are kept */
static int
send_rows(PsModifyState *st, TupleTableSlot **slots, PendingRow *rows, int n)
{
	ErrorContextCallback errcb;
	int			kept = 0;

	errcb.callback = row_context_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	for (int i = 0; i < n; i++)
	{
		PsJson	   *rec;

		CHECK_FOR_INTERRUPTS();
		st->current_row = rows[i].rowno;
		rec = send_insert(st, &rows[i]);
		if (rec == NULL)
			continue;			/* skipped: already a subscriber */
		st->written++;
		fill_slot(st, slots[i], &rows[i], rec);
		slots[kept++] = slots[i];
	}
	error_context_stack = errcb.previous;
	return kept;
}

static TupleTableSlot *
postscriptExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow	row;
	int			kept;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	row.rowno = ++st->rowno;
	build_row(st, slot, &row);
	kept = send_rows(st, &slot, &row, 1);
	MemoryContextSwitchTo(old);
	return kept ? slot : NULL;
}

/*
 * A batch: every row is validated before any of them is sent, then they
 * are sent one by one (Postscript has no batch endpoint), paced by the
 * rate limit.
 */
static TupleTableSlot **
postscriptExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
								 TupleTableSlot **slots, TupleTableSlot **planSlots,
								 int *numSlots)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow *rows;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	rows = palloc(sizeof(PendingRow) * *numSlots);
	for (int i = 0; i < *numSlots; i++)
	{
		rows[i].rowno = ++st->rowno;
		build_row(st, slots[i], &rows[i]);
	}
	*numSlots = send_rows(st, slots, rows, *numSlots);
	MemoryContextSwitchTo(old);
	return slots;
}

static int
postscriptGetForeignModifyBatchSize(ResultRelInfo *rinfo)
{
	PsModifyState *st = rinfo->ri_FdwState;

	/* RETURNING and row triggers need each row's answer before the next */
	if (st == NULL || rinfo->ri_projectReturning != NULL ||
		rinfo->ri_WithCheckOptions != NIL ||
		(rinfo->ri_TrigDesc &&
		 (rinfo->ri_TrigDesc->trig_insert_before_row ||
		  rinfo->ri_TrigDesc->trig_insert_after_row)))
		return 1;
	return st->batch_size;
}

static TupleTableSlot *
postscriptExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow	row;
	Datum		id;
	bool		isnull;
	const char *brace;
	char	   *path;
	PsHttpResult res;
	PsJson	   *rec;
	ErrorContextCallback errcb;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	row.rowno = ++st->rowno;
	id = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("row %lld of %s has no id", (long long) row.rowno, st->what)));
	build_row(st, slot, &row);

	brace = strstr(st->path, "{id}");
	path = brace
		? psprintf("%.*s%s%s", (int) (brace - st->path), st->path,
				   ps_url_encode(TextDatumGetCString(id)), brace + 4)
		: pstrdup(st->path);

	errcb.callback = row_context_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	st->current_row = row.rowno;
	/* tags are added and properties merged: sending twice is harmless */
	ps_http_request(st->conn, st->method, path,
					json_object_to_json_string_ext(row.body, JSON_C_TO_STRING_PLAIN),
					0, &res);
	st->requests++;
	st->retries += res.retries;
	rec = parse_response(st, &res, st->method, path);
	st->written++;
	fill_slot(st, slot, &row, rec);
	error_context_stack = errcb.previous;

	MemoryContextSwitchTo(old);
	return slot;
}

static void
postscriptEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
	PsModifyState *st = rinfo->ri_FdwState;

	if (st && st->temp_cxt)
	{
		MemoryContextDelete(st->temp_cxt);
		st->temp_cxt = NULL;
	}
}

static void
postscriptExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
							   List *fdw_private, int subplan_index, ExplainState *es)
{
	PsModifyState *st = rinfo->ri_FdwState;

	ExplainPropertyText("Postscript Request", psprintf("%s %s", st->method, st->path), es);
	if (rinfo->ri_BatchSize > 1)
		ExplainPropertyInteger("Batch Size", NULL, rinfo->ri_BatchSize, es);
	if (es->analyze)
	{
		ExplainPropertyInteger("Requests", NULL, st->requests, es);
		ExplainPropertyInteger("Rows Written", NULL, st->written, es);
		if (st->skip_conflicts)
			ExplainPropertyInteger("Rows Skipped", NULL, st->skipped, es);
		ExplainPropertyInteger("Reconciled", NULL, st->reconciled, es);
		ExplainPropertyInteger("Retries", NULL, st->retries, es);
	}
}

/* ---------------------------------------------------------------- handler */

void
ps_modify_routines(FdwRoutine *r)
{
	r->IsForeignRelUpdatable = postscriptIsForeignRelUpdatable;
	r->AddForeignUpdateTargets = postscriptAddForeignUpdateTargets;
	r->PlanForeignModify = postscriptPlanForeignModify;
	r->BeginForeignModify = postscriptBeginForeignModify;
	r->BeginForeignInsert = postscriptBeginForeignInsert;
	r->EndForeignInsert = postscriptEndForeignModify;
	r->ExecForeignInsert = postscriptExecForeignInsert;
	r->ExecForeignBatchInsert = postscriptExecForeignBatchInsert;
	r->GetForeignModifyBatchSize = postscriptGetForeignModifyBatchSize;
	r->ExecForeignUpdate = postscriptExecForeignUpdate;
	r->EndForeignModify = postscriptEndForeignModify;
	r->ExplainForeignModify = postscriptExplainForeignModify;
}
