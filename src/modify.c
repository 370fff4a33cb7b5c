/*-------------------------------------------------------------------------
 *
 * modify.c
 *		INSERT, UPDATE and DELETE: rows to Postscript write requests.
 *
 * What a write sends is data: the resource's write spec (resources.c) names
 * the method, the path, which body keys are required, whether an unknown
 * outcome can be reconciled and how the answer becomes the returned row;
 * each written column's descriptor names its body key and what its value
 * is (PsValueKind).  This file only applies them.
 *
 * Every row is checked before anything is sent for it (phone numbers are
 * normalized to E.164; emails, tags, properties, event types and origins
 * are checked by validate.c); a bad row is an error that names the row and
 * the column.  A valid row's request is then queued until the transaction
 * commits (write_queue.c), or, with send_at_commit false, sent at once.
 *
 * At commit nothing Postscript alone knows (the pending subscriber id, the
 * event id) can be returned, so RETURNING of such a column is refused when
 * planned, with a hint to send_at_commit.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/inherit.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "postscript_fdw.h"
#include "phone.h"
/* validate.h names json-c's type; postscript_fdw.h renamed it */
#define json_object PsJson
#include "validate.h"
#undef json_object

/* name of the junk column that carries the row's id into UPDATE/DELETE */
#define ID_JUNK_NAME "postscript_id"

/* indexes into the fdw_private list of PlanForeignModify */
enum ModifyPrivate
{
	MP_OPERATION,				/* Integer: CmdType */
	MP_UPDATED,					/* List of Integer: attnums an UPDATE sets */
	MP_SKIP_CONFLICTS			/* Integer: ON CONFLICT DO NOTHING */
};

/* one column a write sends */
typedef struct WriteCol
{
	PsColumn   *col;
	const char *key;			/* body key */
	PsValueKind kind;
} WriteCol;

typedef struct PsModifyState
{
	PsTable    *table;
	CmdType		op;
	const PsWriteSpec *spec;
	char	   *what;			/* "INSERT into \"subscribers\"", for errors */
	WriteCol   *wcols;
	int			nwcols;
	bool		skip_conflicts; /* ON CONFLICT DO NOTHING: a conflict skips */
	bool		check_given;	/* refuse values in columns not sent */
	bool		at_commit;		/* queue the writes until COMMIT */
	int			batch_size;
	AttrNumber	id_junk;		/* UPDATE, DELETE: the id junk column */
	HTAB	   *changed;		/* UPDATE, DELETE: paths of the objects
								 * written by the statement so far */
	Oid			userid;
	PsConn	   *conn;			/* sending at once only */
	MemoryContext temp_cxt;		/* one row (or one batch) at a time */

	int64		rowno;			/* rows of the statement seen so far */
	int64		current_row;	/* the row being sent, for errcontext */

	/* rows of the statement applied so far (sending at once), as ranges */
	StringInfoData applied;
	int64		run_start;
	int64		run_end;

	/* for EXPLAIN ANALYZE */
	int64		queued;
	int64		written;
	int64		skipped;
	int64		reconciled;
	int64		requests_before;
} PsModifyState;

/* one validated row, ready to send */
typedef struct PendingRow
{
	int64		rowno;
	PsJson	   *body;
	char	   *path;
	Datum	   *values;			/* the row as given (phone normalized) */
	bool	   *nulls;
} PendingRow;

static PsColumn *id_column(PsTable *t);

/* whether a foreign scan is ours and pages a list (postscript_fdw.c) */
static bool (*scan_pages_list) (ForeignScanState *fss);

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

/* the write spec of an operation on a resource, or NULL */
static const PsWriteSpec *
spec_of(const PsResource *res, CmdType op)
{
	switch (op)
	{
		case CMD_INSERT:
			return res->insert;
		case CMD_UPDATE:
			return res->update;
		case CMD_DELETE:
			return res->del;
		default:
			return NULL;
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

/* "rows 1-2, 4": the rows of the statement applied so far */
static char *
applied_rows(PsModifyState *st)
{
	if (st->run_end == 0)
		return st->applied.data;
	return psprintf("%s%s%lld%s", st->applied.data, st->applied.len ? ", " : "",
					(long long) st->run_start,
					st->run_end > st->run_start
					? psprintf("-%lld", (long long) st->run_end) : "");
}

static void
note_applied(PsModifyState *st, int64 rowno)
{
	if (st->run_end != 0 && rowno == st->run_end + 1)
	{
		st->run_end = rowno;
		return;
	}
	if (st->run_end != 0)
	{
		char	   *all = applied_rows(st);

		resetStringInfo(&st->applied);
		appendStringInfoString(&st->applied, all);
	}
	st->run_start = st->run_end = rowno;
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
			 st->at_commit
			 ? errhint("Nothing was sent to Postscript: writes wait for COMMIT, and this error discards them.")
			 : st->written > 0
			 ? errhint("No request was sent for this row. Rows %s of the statement were applied before it: ROLLBACK does not undo them.",
					   applied_rows(st))
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

/* a timestamp as custom events take it: "%Y-%m-%d %H:%M:%S.%f" in UTC */
static char *
event_time(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) ||
		timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		return NULL;
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year, tm.tm_mon,
					tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/*
 * Check one column's value and add it to the body.  A phone number is
 * normalized in the row too, so RETURNING shows what was sent.
 */
static void
add_value(PsModifyState *st, PsJson *body, WriteCol *wc, PendingRow *row)
{
	PsColumn   *col = wc->col;
	Datum		value = row->values[col->attnum - 1];
	char		why[256];
	const char *problem = NULL;
	const char *what = NULL;
	char	   *s = NULL;

	switch (wc->kind)
	{
		case PS_VAL_PHONE:
			{
				char		e164[PS_PHONE_MAXLEN];
				const char *country = st->table->sopts->default_country;
				const char *reason;

				s = datum_text(value, col->typid);
				if (ps_phone_normalize(s, country, e164, sizeof(e164), &reason) != 0)
					row_error(st, row->rowno, ERRCODE_INVALID_PARAMETER_VALUE,
							  "invalid phone number", in_column(col->name),
							  psprintf("The value \"%s\" %s (numbers without + or 00 are read as numbers of %s, the server's default_country).",
									   s, reason, country));
				add_string(body, wc->key, e164);
				if (col->typid == TEXTOID || col->typid == VARCHAROID)
					row->values[col->attnum - 1] = CStringGetTextDatum(e164);
				return;
			}
		case PS_VAL_EMAIL:
			s = datum_text(value, col->typid);
			/* as sent: lengths are of the UTF-8 bytes */
			problem = ps_email_problem(pg_server_to_any(s, strlen(s), PG_UTF8), why, sizeof(why));
			what = "invalid email address";
			break;
		case PS_VAL_EVENT_TYPE:
			s = datum_text(value, col->typid);
			problem = ps_event_type_problem(s, why, sizeof(why));
			what = "invalid event type";
			break;
		case PS_VAL_ORIGIN:
			s = datum_text(value, col->typid);
			problem = ps_origin_problem(s, why, sizeof(why));
			what = "invalid origin";
			break;
		case PS_VAL_TEXT:
			s = datum_text(value, col->typid);
			if (s[0] == '\0')
				problem = "must not be an empty string";
			what = "empty value";
			break;
		case PS_VAL_CUSTOMER_ID:
			s = datum_text(value, col->typid);
			what = "invalid Shopify customer id";
			if ((problem = ps_customer_id_problem(s, why, sizeof(why))) != NULL)
				break;
			json_object_object_add(body, wc->key, json_object_new_int64(strtoll(s, NULL, 10)));
			return;
		case PS_VAL_EVENT_TIME:
			{
				int64		ts;
				char	   *sent;

				if (col->conv == PS_CONV_TIMESTAMPTZ || col->conv == PS_CONV_TIMESTAMP)
					ts = DatumGetTimestampTz(value);
				else
				{
					s = datum_text(value, col->typid);
					if (!ps_parse_iso8601(s, strlen(s), &ts))
						row_error(st, row->rowno, ERRCODE_INVALID_PARAMETER_VALUE,
								  "invalid timestamp", in_column(col->name),
								  psprintf("The value \"%s\" must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z.", s));
				}
				sent = event_time(ts);
				if (sent == NULL)
					row_error(st, row->rowno, ERRCODE_DATETIME_VALUE_OUT_OF_RANGE,
							  "timestamp out of range", in_column(col->name),
							  "Postscript takes dates in the years 1 to 9999.");
				add_string(body, wc->key, sent);
				return;
			}
		case PS_VAL_TAGS:
		case PS_VAL_SUBSCRIBER_PROPERTIES:
		case PS_VAL_OBJECT:
		case PS_VAL_EVENT_PROPERTIES:
			{
				PsJson	   *j = ps_datum_to_json(value, col->typid);

				/* owned by the body from here on, checked there */
				json_object_object_add(body, wc->key, j);
				if (wc->kind == PS_VAL_TAGS)
				{
					problem = ps_tags_problem(j, why, sizeof(why));
					what = "invalid tags";
				}
				else
				{
					problem = wc->kind == PS_VAL_OBJECT
						? ps_object_problem(j, why, sizeof(why))
						: wc->kind == PS_VAL_EVENT_PROPERTIES
						? ps_event_properties_problem(j, why, sizeof(why))
						: ps_properties_problem(j, why, sizeof(why));
					what = "invalid properties";
				}
				if (problem != NULL)
					row_error(st, row->rowno, ERRCODE_INVALID_PARAMETER_VALUE,
							  what, in_column(col->name),
							  psprintf("The value %s.", problem));
				return;
			}
	}
	if (problem != NULL)
		row_error(st, row->rowno, ERRCODE_INVALID_PARAMETER_VALUE,
				  what, in_column(col->name),
				  psprintf("The value \"%s\" %s.", s, problem));
	add_string(body, wc->key, s);
}

/* a write rule: of the keys listed, at least min and at most max given */
static void
check_rule(PsModifyState *st, PsJson *body, int64 rowno, const PsWriteRule *rule)
{
	StringInfoData names;
	char	   *keys = pstrdup(rule->keys);
	char	   *where;
	int			given = 0;
	int			nkeys = 0;

	initStringInfo(&names);
	for (char *k = strtok(keys, ","); k; k = strtok(NULL, ","))
	{
		appendStringInfo(&names, "%s\"%s\"", nkeys == 0 ? "" : " or ", key_column(st, k));
		if (json_object_object_get_ex(body, k, NULL))
			given++;
		nkeys++;
	}
	where = nkeys == 1 ? psprintf("column %s", names.data)
		: psprintf("columns %s", names.data);
	if (given < rule->min)
		row_error(st, rowno, ERRCODE_NOT_NULL_VIOLATION, "missing value", where,
				  psprintf("%s %s needs a value in %s.", st->spec->method, st->spec->path,
						   nkeys == 1 ? where : psprintf("one of the %s", where)));
	if (given > rule->max)
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
	row->path = (char *) st->spec->path;

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

		if (row->nulls[wc->col->attnum - 1])
		{
			if (st->op != CMD_UPDATE)
				continue;		/* not sent */
			if (wc->kind != PS_VAL_EMAIL)
				row_error(st, row->rowno, ERRCODE_NOT_NULL_VIOLATION,
						  "NULL value", in_column(wc->col->name),
						  "Postscript adds tags and merges properties: an UPDATE cannot set them to NULL.");
			json_object_object_add(body, wc->key, NULL);
			continue;
		}
		add_value(st, body, wc, row);
	}

	for (int i = 0; i < st->spec->nrules; i++)
		check_rule(st, body, row->rowno, &st->spec->rules[i]);
}

/* UPDATE, DELETE: the path of the row's object, from its id */
static void
set_object_path(PsModifyState *st, TupleTableSlot *planSlot, PendingRow *row)
{
	bool		isnull;
	Datum		id = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	char	   *s;

	const char *where = in_column(id_column(st->table)->name);

	if (isnull)
		row_error(st, row->rowno, ERRCODE_NOT_NULL_VIOLATION, "no id", where,
				  "The object to write is named by its id.");
	s = datum_text(id, id_column(st->table)->typid);
	if (!ps_valid_object_id(s))
		row_error(st, row->rowno, ERRCODE_INVALID_PARAMETER_VALUE, "invalid id", where,
				  psprintf("The id \"%s\" names no object: %s %s would name another endpoint.",
						   s, st->spec->method, st->spec->path));
	row->path = ps_object_path(st->spec->path, s);
}

/* ---------------------------------------------------------------- results */

/*
 * Put the row into the slot, for RETURNING and triggers: the values the API
 * returned (sending at once), and for columns it leaves out the values
 * given.
 */
static void
fill_slot(PsModifyState *st, TupleTableSlot *slot, PendingRow *row, PsJson *rec)
{
	int			natts = slot->tts_tupleDescriptor->natts;
	Datum	   *values = palloc(sizeof(Datum) * natts);
	bool	   *nulls = palloc(sizeof(bool) * natts);

	if (rec != NULL && json_object_is_type(rec, json_type_object))
		ps_record_to_values(st->table, rec, values, nulls);
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

	if (st->written > 0)
		errcontext("row %lld of %s; rows %s of it were applied before it, and ROLLBACK does not undo them",
				   (long long) st->current_row, st->what, applied_rows(st));
	else
		errcontext("row %lld of %s", (long long) st->current_row, st->what);
}

/*
 * Queue a validated row's write until COMMIT, or send it now.  Returns
 * false when ON CONFLICT DO NOTHING skips it (sending at once only).
 */
static bool
write_row(PsModifyState *st, TupleTableSlot *slot, PendingRow *row)
{
	PsWrite		w;
	PsJson	   *rec = NULL;
	PsWriteOutcome outcome;
	ErrorContextCallback errcb;

	w.serverid = st->table->serverid;
	w.userid = st->userid;
	w.spec = st->spec;
	w.path = row->path;
	w.body = st->op == CMD_DELETE ? NULL
		: (char *) json_object_to_json_string_ext(row->body, JSON_C_TO_STRING_PLAIN |
												  JSON_C_TO_STRING_NOSLASHESCAPE);
	w.label = psprintf("row %lld of %s", (long long) row->rowno, st->what);
	w.skip_conflicts = st->skip_conflicts;
	ps_write_subjects(&w, row->body);

	if (st->at_commit)
	{
		ps_write_enqueue(&w);
		st->queued++;
		fill_slot(st, slot, row, NULL);
		return true;
	}

	errcb.callback = row_context_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	st->current_row = row->rowno;
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			outcome = ps_write_send(st->conn, &w, &rec);
		}
		PG_CATCH();
		{
			ps_write_rethrow(cxt);
		}
		PG_END_TRY();
	}
	if (outcome != PS_WRITE_SKIPPED)
		ps_write_applied_now(&w);
	switch (outcome)
	{
		case PS_WRITE_SKIPPED:
			st->skipped++;
			error_context_stack = errcb.previous;
			return false;
		case PS_WRITE_RECONCILED:
			st->reconciled++;
			/* applied, but its answer is lost: the pending id is unknown */
			rec = own_json(json_object_new_object());
			json_object_object_add(rec, "is_pending", json_object_new_boolean(1));
			break;
		case PS_WRITE_APPLIED:
			break;
	}
	error_context_stack = errcb.previous;
	st->written++;
	note_applied(st, row->rowno);
	fill_slot(st, slot, row, rec);
	return true;
}

/* ---------------------------------------------------------------- planning */

static int
postscriptIsForeignRelUpdatable(Relation rel)
{
	PsTable    *t = ps_get_table(RelationGetRelid(rel));

	return (t->res->insert ? (1 << CMD_INSERT) : 0) |
		(t->res->update ? (1 << CMD_UPDATE) : 0) |
		(t->res->del ? (1 << CMD_DELETE) : 0);
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

/* UPDATE and DELETE find the object by its id, fetched by the scan */
static void
postscriptAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
								  RangeTblEntry *target_rte, Relation target_relation)
{
	PsTable    *t;
	PsColumn   *col;
	Var		   *var;

	t = ps_get_table(RelationGetRelid(target_relation));
	if (spec_of(t->res, root->parse->commandType) == NULL)
		return;					/* refused by PlanForeignModify */
	col = id_column(t);
	if (col == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("foreign table \"%s\" has no id column, which %s needs",
						t->relname, root->parse->commandType == CMD_UPDATE ? "UPDATE" : "DELETE"),
				 errhint("Add a column \"id text\": it names the object to write.")));
	var = makeVar(rtindex, col->attnum, col->typid, col->typmod,
				  TupleDescAttr(RelationGetDescr(target_relation), col->attnum - 1)->attcollation,
				  0);
	add_row_identity_var(root, var, rtindex, ID_JUNK_NAME);
}

static void
refuse(PsTable *t, CmdType op)
{
	const char *hint = t->res->refused_hint;

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

/*
 * Writes sent at commit: RETURNING can show only what the row gave (an
 * INSERT's written columns); what Postscript alone knows (ids, pending
 * state, timestamps, what an UPDATE merged) does not exist yet.
 */
static void
refuse_returning(PsTable *t, CmdType op, Bitmapset *attrs)
{
	int			k = -1;

	if (!t->sopts->send_at_commit)
		return;
	while ((k = bms_next_member(attrs, k)) >= 0)
	{
		AttrNumber	attnum = k + FirstLowInvalidHeapAttributeNumber;
		PsColumn   *col = attnum > 0 ? ps_table_column(t, attnum) : NULL;

		if (op == CMD_INSERT && col != NULL &&
			col->def != NULL && col->def->body_key != NULL)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("RETURNING %s of foreign table \"%s\" is not known before COMMIT",
						col ? psprintf("column \"%s\"", col->name) : "the whole row",
						t->relname),
				 errdetail("Writes to Postscript are sent when the transaction commits; %s.",
						   op == CMD_INSERT
						   ? psprintf("until then RETURNING can show only the columns written (%s)",
									  column_list(t, false))
						   : "until then what Postscript makes of the row is unknown"),
				 errhint("Read the table after COMMIT, or set the option send_at_commit 'false' on the table or server to send each row as the statement runs (ROLLBACK then does not undo it).")));
	}
}

/* a statement's RETURNING list, when it is planned */
static void
check_returning(PsTable *t, ModifyTable *plan, Index resultRelation, int subplan_index)
{
	Bitmapset  *attrs = NULL;

	if (plan->returningLists == NIL)
		return;
	pull_varattnos((Node *) list_nth(plan->returningLists, subplan_index),
				   resultRelation, &attrs);
	refuse_returning(t, plan->operation, attrs);
}

static List *
postscriptPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
							Index resultRelation, int subplan_index)
{
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	PsTable    *t = ps_get_table(rte->relid);
	List	   *updated = NIL;
	int			k = -1;

	if (spec_of(t->res, plan->operation) == NULL)
		refuse(t, plan->operation);
	check_returning(t, plan, resultRelation, subplan_index);
	if (plan->operation == CMD_INSERT)
	{
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
	}
	else if (plan->operation == CMD_UPDATE)
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
								   t->res->update->method, t->res->update->path,
								   column_list(t, true))));
			updated = lappend(updated, makeInteger(attnum));
		}
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
	st->spec = spec_of(t->res, op);
	Assert(st->spec != NULL);
	st->skip_conflicts = skip_conflicts;
	st->at_commit = t->sopts->send_at_commit;
	st->batch_size = t->sopts->batch_size;
	st->what = psprintf("%s \"%s\"",
						op == CMD_INSERT ? "INSERT into" : op == CMD_UPDATE ? "UPDATE of" : "DELETE from",
						t->relname);
	initStringInfo(&st->applied);

	/* the columns sent: every writable one, or those the UPDATE sets */
	st->wcols = palloc0(sizeof(WriteCol) * Max(t->ncolumns, 1));
	for (int i = 0; op != CMD_DELETE && i < t->ncolumns; i++)
	{
		PsColumn   *col = &t->columns[i];

		if (col->def == NULL || col->def->body_key == NULL)
			continue;
		if (op == CMD_UPDATE && !list_member_int(updated, col->attnum))
			continue;
		st->wcols[st->nwcols].col = col;
		st->wcols[st->nwcols].key = col->def->body_key;
		st->wcols[st->nwcols].kind = col->def->value;
		st->nwcols++;
	}

	if (explain_only)
		return st;

	/*
	 * The connection, even for writes sent at commit: a missing user mapping
	 * or a bad option is reported by the statement, not by COMMIT.
	 */
	st->userid = ps_modify_user(rinfo, estate);
	st->conn = ps_get_connection(t->serverid, st->userid);
	st->requests_before = st->conn->stats.requests;
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw modify",
										 ALLOCSET_DEFAULT_SIZES);
	return st;
}

/*
 * Writes sent as the statement runs change what a scan of the same
 * statement has yet to read: Postscript pages lists by number, and a row
 * a write changes (its updated_at, a field filtered on) moves out of the
 * pages still to come, so the scan would skip rows without a word.  Such
 * a statement is refused before anything is sent.
 */
static bool
find_list_scan(PlanState *ps, void *context)
{
	if (ps == NULL)
		return false;
	Assert(scan_pages_list != NULL);
	if (IsA(ps, ForeignScanState) && scan_pages_list((ForeignScanState *) ps))
	{
		*(ForeignScanState **) context = (ForeignScanState *) ps;
		return true;
	}
	return planstate_tree_walker(ps, find_list_scan, context);
}

static void
check_no_list_scan(ModifyTableState *mtstate, PsModifyState *st)
{
	ForeignScanState *found = NULL;
	Relation	scanned = NULL;
	ListCell   *lc;

	if (st->at_commit || mtstate == NULL)
		return;
	/* in the plan, or in its CTEs and subplans */
	if (find_list_scan(outerPlanState(mtstate), &found))
		scanned = found->ss.ss_currentRelation;
	foreach(lc, mtstate->ps.state->es_subplanstates)
		if (scanned == NULL && find_list_scan((PlanState *) lfirst(lc), &found))
			scanned = found->ss.ss_currentRelation;
	if (scanned != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot send its writes as the statement runs while it pages through foreign table \"%s\"",
						st->what, RelationGetRelationName(scanned)),
				 errdetail("Postscript pages its lists by number: each write sent moves the objects it changes within the pages still to be read, so rows would be skipped or read twice."),
				 errhint("Leave send_at_commit at true for this table, so the writes go at COMMIT, after the scan; or copy the rows first (CREATE TEMP TABLE ... AS SELECT ...) and write from the copy.")));
}

static void
postscriptBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
							 List *fdw_private, int subplan_index, int eflags)
{
	PsModifyState *st;
	List	   *updated = list_nth(fdw_private, MP_UPDATED);
	List	   *attnums = NIL;
	ListCell   *lc;

	foreach(lc, updated)
		attnums = lappend_int(attnums, intVal(lfirst(lc)));
	st = init_state(mtstate->ps.state, rinfo,
					(CmdType) intVal(list_nth(fdw_private, MP_OPERATION)),
					attnums,
					intVal(list_nth(fdw_private, MP_SKIP_CONFLICTS)) != 0,
					(eflags & EXEC_FLAG_EXPLAIN_ONLY) != 0);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		check_no_list_scan(mtstate, st);
	if (st->op != CMD_INSERT && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
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
	check_no_list_scan(mtstate, st);

	/*
	 * A row routed to this partition: the statement was planned for its
	 * parent, so its RETURNING (mapped to this table's columns; every Var
	 * in an INSERT's RETURNING is of the row inserted) is checked here.
	 */
	if (rinfo->ri_returningList != NIL)
	{
		Bitmapset  *attrs = NULL;
		ListCell   *lc;

		foreach(lc, pull_var_clause((Node *) rinfo->ri_returningList,
									PVC_RECURSE_AGGREGATES | PVC_RECURSE_WINDOWFUNCS |
									PVC_RECURSE_PLACEHOLDERS))
			attrs = bms_add_member(attrs, ((Var *) lfirst(lc))->varattno -
								   FirstLowInvalidHeapAttributeNumber);
		refuse_returning(st->table, CMD_INSERT, attrs);
	}
}

static TupleTableSlot *
postscriptExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow	row;
	bool		kept;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	row.rowno = ++st->rowno;
	build_row(st, slot, &row);
	kept = write_row(st, slot, &row);
	MemoryContextSwitchTo(old);
	return kept ? slot : NULL;
}

/*
 * A batch: every row is validated before any of them is written, then they
 * are written one by one (Postscript has no batch endpoint).
 */
static TupleTableSlot **
postscriptExecForeignBatchInsert(EState *estate, ResultRelInfo *rinfo,
								 TupleTableSlot **slots, TupleTableSlot **planSlots,
								 int *numSlots)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow *rows;
	TupleTableSlot **written;
	int			kept = 0;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	rows = palloc(sizeof(PendingRow) * *numSlots);
	for (int i = 0; i < *numSlots; i++)
	{
		rows[i].rowno = ++st->rowno;
		build_row(st, slots[i], &rows[i]);
	}

	/*
	 * The rows written, without those ON CONFLICT DO NOTHING skipped, in an
	 * array of their own: slots[] is the executor's (ri_Slots, COPY's
	 * buffer), which it fills again for the next batch and drops at the end
	 * one by one; reordered, a slot would be filled twice and dropped twice.
	 * The caller reads it before the next batch resets temp_cxt.
	 */
	written = palloc(sizeof(TupleTableSlot *) * *numSlots);
	for (int i = 0; i < *numSlots; i++)
	{
		CHECK_FOR_INTERRUPTS();
		if (write_row(st, slots[i], &rows[i]))
			written[kept++] = slots[i];
	}
	*numSlots = kept;
	MemoryContextSwitchTo(old);
	return written;
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

/* hash and match for st->changed, whose keys are C strings */
static uint32
path_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, (int) strlen(s));
}

static int
path_match(const void *key1, const void *key2, Size keysize)
{
	return strcmp(*(const char *const *) key1, *(const char *const *) key2);
}

/*
 * Whether this is the statement's first write of the object at path.  A
 * join can match one object more than once; PostgreSQL changes a row once
 * per statement (a later match of a row the statement changed already is
 * not affected), and so does this: a second request would change the
 * object twice, and a second DELETE would find it gone.
 */
static bool
first_change(PsModifyState *st, EState *estate, const char *path)
{
	bool		found;
	char	  **entry;

	if (st->changed == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(char *);
		ctl.entrysize = sizeof(char *);
		ctl.hash = path_hash;
		ctl.match = path_match;
		ctl.hcxt = estate->es_query_cxt;
		st->changed = hash_create("postscript_fdw objects changed", 256, &ctl,
								  HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	entry = hash_search(st->changed, &path, HASH_ENTER, &found);
	if (!found)
		*entry = MemoryContextStrdup(estate->es_query_cxt, path);
	return !found;
}

/* UPDATE and DELETE: one object, named by its id */
static TupleTableSlot *
write_object(EState *estate, ResultRelInfo *rinfo, TupleTableSlot *slot,
			 TupleTableSlot *planSlot)
{
	PsModifyState *st = rinfo->ri_FdwState;
	MemoryContext old;
	PendingRow	row;
	char	   *path;

	MemoryContextReset(st->temp_cxt);
	old = MemoryContextSwitchTo(st->temp_cxt);
	row.rowno = st->rowno + 1;
	set_object_path(st, planSlot, &row);
	path = row.path;
	if (!first_change(st, estate, path))
	{
		MemoryContextSwitchTo(old);
		return NULL;
	}
	st->rowno++;
	if (st->op == CMD_DELETE)
		ExecStoreAllNullTuple(slot);
	build_row(st, slot, &row);
	row.path = path;
	write_row(st, slot, &row);
	MemoryContextSwitchTo(old);
	return slot;
}

static TupleTableSlot *
postscriptExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return write_object(estate, rinfo, slot, planSlot);
}

static TupleTableSlot *
postscriptExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
							TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return write_object(estate, rinfo, slot, planSlot);
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

	ExplainPropertyText("Postscript Request",
						psprintf("%s %s", st->spec->method, st->spec->path), es);
	ExplainPropertyText("Sent", st->at_commit ? "at commit" : "as the statement runs", es);
	if (rinfo->ri_BatchSize > 1)
		ExplainPropertyInteger("Batch Size", NULL, rinfo->ri_BatchSize, es);
	if (!es->analyze)
		return;
	if (st->at_commit)
	{
		ExplainPropertyInteger("Rows Queued", NULL, st->queued, es);
		return;
	}
	ExplainPropertyInteger("Requests", NULL, st->conn->stats.requests - st->requests_before, es);
	ExplainPropertyInteger("Rows Written", NULL, st->written, es);
	if (st->skip_conflicts)
		ExplainPropertyInteger("Rows Skipped", NULL, st->skipped, es);
	ExplainPropertyInteger("Reconciled", NULL, st->reconciled, es);
}

/* ---------------------------------------------------------------- handler */

void
ps_modify_routines(FdwRoutine *r, bool (*pages_list) (ForeignScanState *fss))
{
	scan_pages_list = pages_list;
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
	r->ExecForeignDelete = postscriptExecForeignDelete;
	r->EndForeignModify = postscriptEndForeignModify;
	r->ExplainForeignModify = postscriptExplainForeignModify;
}
