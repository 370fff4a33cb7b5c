/*-------------------------------------------------------------------------
 *
 * write_queue.c
 *		Writes sent when the transaction commits, and sending one write.
 *
 * Nothing reaches Postscript (no text to a phone, no opt-out, no event)
 * unless the transaction commits.  modify.c validates each row when the
 * statement runs and queues its request here; a pre-commit callback sends
 * the queue in order, paced by the rate limit and cancellable.  ROLLBACK,
 * an error, or ROLLBACK TO SAVEPOINT drops the writes queued in what was
 * rolled back; PREPARE TRANSACTION with queued writes is refused
 * (Postscript has no two-phase commit).  If a write fails at commit, the
 * commit fails with an error that says which writes were applied and which
 * were not, and postscript_fdw_last_commit() keeps that list for the
 * session.  The queue lives in a child of TopTransactionContext, capped by
 * postscript_fdw.max_queued_size.
 *
 * ps_write_send() sends one write, now or at commit.  Retrying never
 * duplicates a write: http.c retries what surely was not applied, and
 * reports a write whose outcome is unknown (a timeout after sending, a cut
 * connection, a 5xx) as maybe_applied; the write spec then says what to do:
 * an idempotent write is retried as a read is (a delete whose retry finds
 * the id unknown was applied by an earlier attempt), and when the retries
 * are spent its outcome is unknown, not failed; a create is sent again (a
 * conflict in answer proves the earlier attempt was applied: Postscript
 * reports an existing subscriber, active or pending, as
 * v2.entity_conflict), and a write that can be neither (an event) is an
 * error and never sent again.  An UPDATE or DELETE whose id Postscript no
 * longer knows (deleted there since the row was read) is an error of its
 * own, report_row_gone().
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/ps_status.h"

#include "postscript_fdw.h"

/* one queued write */
typedef struct QueuedWrite
{
	PsWrite		w;
	int			level;			/* subtransaction nesting level it was
								 * queued at */
} QueuedWrite;

/* the writes of the current transaction, in order, in queue_cxt (a child of
 * TopTransactionContext, whose size postscript_fdw.max_queued_size caps) */
static List *queue = NIL;
static MemoryContext queue_cxt = NULL;

/* postscript_fdw.max_queued_size, kB */
static int	max_queued_kb = 65536;

/* what became of one write of the last commit that sent writes */
typedef enum CommitStatus
{
	CS_NOT_SENT,
	CS_APPLIED,
	CS_RECONCILED,
	CS_SKIPPED,
	CS_FAILED,					/* refused: not applied */
	CS_UNKNOWN					/* cancelled or unknown while in flight: may
								 * have been applied */
} CommitStatus;

/* for postscript_fdw_last_commit() */
static const char *const status_names[] = {
	"not sent", "applied", "applied (reconciled)", "skipped (conflict)", "failed",
	"outcome unknown"
};

/* for the commit's error detail */
static const char *const summary_names[] = {
	"Not sent", "Applied", "Applied (reconciled after an unknown outcome)",
	"Skipped as conflicts", "Failed", "Outcome unknown (it may have been applied)"
};

typedef struct CommitEntry
{
	char	   *label;
	char	   *method;
	char	   *path;
	char	   *body;
	CommitStatus status;
	char	   *id;				/* the id Postscript gave, if any */
	char	   *error;
} CommitEntry;

/* the last commit's outcome, for this session (last_cxt) */
static MemoryContext last_cxt = NULL;
static CommitEntry *last = NULL;
static int	nlast = 0;
/* the queue was sent whole by this transaction's pre-commit */
static bool queue_sent = false;

/*
 * Writes sent as their statements ran and applied, in this transaction; and
 * of them, those that running their statements again would apply a second
 * time (see repeat_duplicates)
 */
static int64 applied_now = 0;
static int64 applied_now_again = 0;

PG_FUNCTION_INFO_V1(postscript_fdw_last_commit);

/* ---------------------------------------------------------------- sending */

/* the id out of a write's result row, or NULL */
static char *
result_id(PsJson *rec)
{
	PsJson	   *v;

	if (rec != NULL && json_object_is_type(rec, json_type_object) &&
		json_object_object_get_ex(rec, "id", &v) &&
		json_object_is_type(v, json_type_string))
		return pstrdup(json_object_get_string(v));
	return NULL;
}

/*
 * A 2xx answer as the row written (see PsWriteResult), freed with the
 * current memory context.  The write was applied whatever the body says: a
 * body that is not JSON is a warning and no result, never an error.
 */
static PsJson *
parse_result(PsConn *conn, PsWrite *w, PsHttpResult *res)
{
	const PsWriteSpec *spec = w->spec;
	MemoryContext cxt = CurrentMemoryContext;
	PsJson	   *root = NULL;
	PsJson	   *rec;
	PsJson	   *v;

	if (spec->result == PS_RESULT_NONE || res->len == 0)
		return NULL;
	PG_TRY();
	{
		root = ps_parse_json(res->body, res->len, conn->opts->max_json_depth,
							 conn->server_name, spec->method, w->path);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_JSON_TEXT),
				 errmsg("Postscript applied %s but its answer is not valid JSON", w->label),
				 errdetail("HTTP %ld: the values only Postscript knows (such as the id) are unknown.",
						   res->status),
				 ps_request_errcontext(conn->server_name, spec->method, w->path)));
		root = NULL;
	}
	PG_END_TRY();
	if (root == NULL || !json_object_is_type(root, json_type_object))
		return NULL;
	if (spec->result == PS_RESULT_ID_LIST)
	{
		rec = json_object_new_object();
		if (json_object_object_get_ex(root, spec->result_key, &v) &&
			json_object_is_type(v, json_type_array) &&
			json_object_array_length(v) > 0)
			json_object_object_add(rec, "id",
								   json_object_get(json_object_array_get_idx(v, 0)));
		/* the new object belongs to root from here on, freed with it */
		json_object_object_add(root, " result", rec);
		return rec;
	}
	rec = root;
	for (const char *const *r = spec->renames; r && r[0]; r += 2)
	{
		if (r[1][0] == '=')
			json_object_object_add(rec, r[0], json_object_new_string(r[1] + 1));
		else if (json_object_object_get_ex(rec, r[1], &v))
			json_object_object_add(rec, r[0], json_object_get(v));
	}
	return rec;
}

/*
 * The row an UPDATE or DELETE read is gone from Postscript: its id answers
 * as unknown (the documented 400 with the body {} of
 * PATCH /subscribers/{id}, or a 404).  Someone deleted (or redacted) the
 * object between the scan and this write, so the SQLSTATE is the one
 * PostgreSQL gives an UPDATE whose row a concurrent transaction deleted
 * (serialization_failure, which postgres_fdw passes on from the remote
 * server too); running the statement again reads the rows as they are
 * now.  Never returns.
 */
static void
report_row_gone(PsConn *conn, PsWrite *w, PsHttpResult *res)
{
	const PsWriteSpec *spec = w->spec;
	char	   *apimsg = ps_api_error_message(res->body, res->len);

	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("the row to %s no longer exists in Postscript",
					strcmp(spec->method, "DELETE") == 0 ? "delete" : "update"),
			 res->status == 400
			 ? errdetail("HTTP 400 with the body {}: Postscript's answer for an id it does not know. The object was deleted there after the row was read.")
			 : apimsg
			 ? errdetail("HTTP %ld: %s. The object was deleted there after the row was read.",
						 res->status, apimsg)
			 : errdetail("HTTP %ld. The object was deleted there after the row was read.",
						 res->status),
			 errhint("Nothing was changed for this row. Run the statement again: it reads the rows as they are now."),
			 ps_request_errcontext(conn->server_name, spec->method, w->path)));
	pg_unreachable();
}

/*
 * A row that names an object Postscript does not know, in a write whose path
 * names none (an opt-out's subscriber_id): Postscript's own "could not
 * find" 404.  Like a foreign key without its referenced row.  Never returns.
 */
static void
report_unknown_object(PsConn *conn, PsWrite *w, PsHttpResult *res)
{
	char	   *apimsg = ps_api_error_message(res->body, res->len);

	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("%s names an object Postscript does not know", w->label),
			 apimsg ? errdetail("HTTP 404: %s", apimsg)
			 : errdetail("HTTP 404 with error_code 3001."),
			 errhint("Check the row's ids and phone numbers against the foreign tables; nothing was changed for this row."),
			 ps_request_errcontext(conn->server_name, w->spec->method, w->path)));
	pg_unreachable();
}

/*
 * A write that was sent and whose answer says nothing of its fate (a 5xx, a
 * timeout after sending, a cut connection), with no attempt left: neither
 * applied nor refused.  attempts counts every request sent for it; hint
 * says whether sending it again is harmless.  Never returns.
 */
static void
report_outcome_unknown(PsConn *conn, PsWrite *w, PsHttpResult *res,
					   int attempts, const char *hint)
{
	const char *method = w->spec->method;

	Assert(attempts >= 1);
	ereport(ERROR,
			(errcode(ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN),
			 errmsg("Postscript may or may not have applied %s", w->label),
			 res->status && attempts == 1
			 ? errdetail("%s %s answered HTTP %ld.", method, w->path, res->status)
			 : res->status
			 ? errdetail("%s %s answered HTTP %ld to the last of %d attempts; whether one of them was applied is unknown.",
						 method, w->path, res->status, attempts)
			 : attempts == 1
			 ? errdetail("%s %s failed after the request was sent: %s.",
						 method, w->path, res->body)
			 : errdetail("%s %s failed after the request was sent, the last of %d attempts (%s); whether one of them was applied is unknown.",
						 method, w->path, attempts, res->body),
			 errhint("%s", hint),
			 ps_request_errcontext(conn->server_name, method, w->path)));
	pg_unreachable();
}

/*
 * Send one write.  Returns what became of it and, for an applied write, the
 * row Postscript answered (or NULL); raises an error for anything else.
 */
PsWriteOutcome
ps_write_send(PsConn *conn, PsWrite *w, PsJson **result)
{
	const PsWriteSpec *spec = w->spec;
	int			flags = PS_HTTP_ALLOW_4XX | PS_HTTP_CHANGES;
	int			unknown = 0;	/* requests whose outcome is unknown */
	int			attempts = 0;	/* requests sent, retries included */
	double		waited_ms = 0;	/* in backoff before sending them again */
	PsHttpResult res;
	PsApiAnswer answer;

	*result = NULL;
	if (spec->reconcile != PS_RECONCILE_IDEMPOTENT && spec->reconcile != PS_RECONCILE_GONE)
		flags |= PS_HTTP_WRITE;
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		ps_http_request(conn, spec->method, w->path, w->body,
						flags | (unknown > 0 ? PS_HTTP_SENT_BEFORE : 0), &res);
		attempts += res.retries + 1;
		if (res.maybe_applied)
		{
			unknown++;
			if (spec->reconcile == PS_RECONCILE_NONE)
				report_outcome_unknown(conn, w, &res, attempts,
									   "It cannot be looked up, so it was not sent again: that could apply it twice.");
			/* idempotent: http.c retried it as it retries a read */
			if (!(flags & PS_HTTP_WRITE))
				report_outcome_unknown(conn, w, &res, attempts,
									   "Sending it again is harmless: run it again when Postscript answers.");
			/* sent again after a backoff, as a read would be retried */
			if (!ps_http_backoff(conn, unknown - 1, &waited_ms))
				report_outcome_unknown(conn, w, &res, attempts,
									   "Run it again when Postscript answers: if it was applied, Postscript answers a conflict (ON CONFLICT DO NOTHING skips it).");
			/* sent again: a conflict will prove an earlier attempt landed */
			continue;
		}
		if (res.status >= 200 && res.status < 300)
		{
			*result = parse_result(conn, w, &res);
			return PS_WRITE_APPLIED;
		}
		answer = ps_api_classify(res.status, res.body, res.len);
		/* a delete sent again after its answer was lost: the object is gone */
		if (spec->reconcile == PS_RECONCILE_GONE && res.sent_before &&
			PS_ANSWER_NO_SUCH_ID(answer))
			return PS_WRITE_RECONCILED;
		if (answer == PS_ANSWER_CONFLICT)
		{
			if (unknown > 0 && spec->reconcile == PS_RECONCILE_CONFLICT)
				return PS_WRITE_RECONCILED;
			if (w->skip_conflicts)
				return PS_WRITE_SKIPPED;
		}
		/* a create sent again, refused for another reason: the first may have landed */
		if (unknown > 0)
			report_outcome_unknown(conn, w, &res, attempts,
								   "Check the row: if an earlier attempt was applied, sending it again answers a conflict (ON CONFLICT DO NOTHING skips it).");
		if (strstr(spec->path, "{id}") != NULL && PS_ANSWER_NO_SUCH_ID(answer))
			report_row_gone(conn, w, &res);
		if (answer == PS_ANSWER_NOT_FOUND)
			report_unknown_object(conn, w, &res);
		ps_report_http_status(conn, spec->method, w->path, res.status, res.body, res.len,
							  res.retries);
	}
}

/* ---------------------------------------------------------------- the queue */

void
ps_write_enqueue(PsWrite *w)
{
	MemoryContext old;
	QueuedWrite *q;
	size_t		plen = strlen(w->path) + 1;
	size_t		llen = strlen(w->label) + 1;
	size_t		blen = w->body ? strlen(w->body) + 1 : 0;
	char	   *p;

	if (queue_cxt == NULL)
		queue_cxt = AllocSetContextCreate(TopTransactionContext, "postscript_fdw write queue",
										  ALLOCSET_DEFAULT_SIZES);
	if (MemoryContextMemAllocated(queue_cxt, false) + sizeof(QueuedWrite) + plen + llen + blen >
		(Size) max_queued_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many Postscript writes queued in this transaction"),
				 errdetail("%d writes are queued; with %s they would take more than postscript_fdw.max_queued_size (%d kB).",
						   list_length(queue), w->label, max_queued_kb),
				 errhint("Writes are sent at commit: write fewer rows per transaction, or ask a superuser to raise postscript_fdw.max_queued_size.")));

	/* one chunk per write: the struct, then its strings */
	old = MemoryContextSwitchTo(queue_cxt);
	q = palloc(sizeof(QueuedWrite) + plen + llen + blen);
	q->w = *w;
	p = (char *) (q + 1);
	q->w.path = memcpy(p, w->path, plen);
	q->w.label = memcpy(p + plen, w->label, llen);
	q->w.body = w->body ? memcpy(p + plen + llen, w->body, blen) : NULL;
	q->level = GetCurrentTransactionNestLevel();
	queue = lappend(queue, q);
	MemoryContextSwitchTo(old);
}

/*
 * Whether drivers and frameworks may run the whole transaction again on
 * their own when its COMMIT fails with this SQLSTATE (Npgsql's IsTransient,
 * EF Core's and Spring's retrying strategies): connection exceptions,
 * insufficient resources, serialization failures and deadlocks, lock and
 * shutdown conditions.
 */
static bool
retried_by_clients(int code)
{
	switch (ERRCODE_TO_CATEGORY(code))
	{
		case ERRCODE_CONNECTION_EXCEPTION:
		case ERRCODE_INSUFFICIENT_RESOURCES:
			return true;
	}
	return code == ERRCODE_T_R_SERIALIZATION_FAILURE ||
		code == ERRCODE_T_R_DEADLOCK_DETECTED ||
		code == ERRCODE_LOCK_NOT_AVAILABLE ||
		code == ERRCODE_OBJECT_IN_USE ||
		code == ERRCODE_ADMIN_SHUTDOWN ||
		code == ERRCODE_CRASH_SHUTDOWN ||
		code == ERRCODE_CANNOT_CONNECT_NOW ||
		code == ERRCODE_SYSTEM_ERROR ||
		code == ERRCODE_IO_ERROR;
}

/*
 * Whether a write applied once is applied again if its statement runs
 * again: an event or a webhook is recorded anew.  An update, an opt-out or a
 * delete changes nothing the second time, and a create Postscript answers
 * as a conflict once it exists is not applied twice.
 */
static bool
repeat_duplicates(const PsWriteSpec *spec)
{
	return spec->reconcile == PS_RECONCILE_NONE;
}

/*
 * The hint's sentence when an error's SQLSTATE, which clients retry on
 * their own, was replaced by an FDW error
 */
static char *
not_retried_hint(int code)
{
	return psprintf("It is not reported with SQLSTATE %s, which clients may retry on their own: retrying the whole transaction would send the applied writes again.",
					unpack_sql_state(code));
}

/* "1-3, 5": the 1-based positions in [0, n) whose status is s */
static char *
positions(int n, CommitStatus s, int *count)
{
	StringInfoData buf;

	initStringInfo(&buf);
	*count = 0;
	for (int i = 0; i < n; i++)
	{
		int			j = i;

		if (last[i].status != s)
			continue;
		while (j + 1 < n && last[j + 1].status == s)
			j++;
		appendStringInfo(&buf, "%s%d", buf.len ? ", " : "", i + 1);
		if (j > i)
			appendStringInfo(&buf, "-%d", j + 1);
		*count += j - i + 1;
		i = j;
	}
	return buf.data;
}

/* "Applied: 1-2. Failed: 3. Not sent: 4-5." for the commit's error */
static char *
outcome_summary(void)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int s = CS_APPLIED; s <= CS_UNKNOWN; s++)
	{
		int			count;
		char	   *list = positions(nlast, (CommitStatus) s, &count);

		if (count > 0)
			appendStringInfo(&buf, "%s%s: %s.", buf.len ? " " : "",
							 summary_names[s], list);
	}
	{
		int			count;
		char	   *list = positions(nlast, CS_NOT_SENT, &count);

		appendStringInfo(&buf, "%s%s: %s.", buf.len ? " " : "",
						 summary_names[CS_NOT_SENT], count ? list : "none");
	}
	return buf.data;
}

/* the queue, as the session's record of this commit (all not sent yet) */
static void
record_commit(List *writes)
{
	ListCell   *lc;
	CommitEntry *entries;
	int			i = 0;

	if (last_cxt == NULL)
		last_cxt = AllocSetContextCreate(TopMemoryContext, "postscript_fdw last commit",
										 ALLOCSET_DEFAULT_SIZES);
	/* an error while copying (out of memory) leaves an empty record */
	last = NULL;
	nlast = 0;
	MemoryContextReset(last_cxt);
	entries = MemoryContextAllocZero(last_cxt, sizeof(CommitEntry) * list_length(writes));
	foreach(lc, writes)
	{
		QueuedWrite *q = lfirst(lc);

		entries[i].label = MemoryContextStrdup(last_cxt, q->w.label);
		entries[i].method = MemoryContextStrdup(last_cxt, q->w.spec->method);
		entries[i].path = MemoryContextStrdup(last_cxt, q->w.path);
		entries[i].body = q->w.body ? MemoryContextStrdup(last_cxt, q->w.body) : NULL;
		entries[i].status = CS_NOT_SENT;
		i++;
	}
	last = entries;
	nlast = i;
}

/*
 * Send the queue, in order, at commit.  A failure fails the commit: the
 * error keeps its SQLSTATE and message, and its detail says which writes
 * were applied and which were not.
 */
static void
send_queue(void)
{
	List	   *writes = queue;
	MemoryContext cxt;
	MemoryContext old;
	ListCell   *lc;
	int			i = 0;
	volatile int current = -1;
	PsConn	   *volatile conn = NULL;
	volatile uint64 written_before = 0;

	/* whatever happens now, these are not sent twice */
	queue = NIL;
	record_commit(writes);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "postscript_fdw commit",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		foreach(lc, writes)
		{
			QueuedWrite *q = lfirst(lc);
			PsJson	   *rec;
			PsWriteOutcome outcome;
			char	   *id;

			/* an error from here on is this write's, even before it is sent */
			current = i;
			conn = NULL;
			conn = ps_get_connection(q->w.serverid, q->w.userid);
			written_before = conn->requests_written;
			set_ps_display(psprintf("COMMIT: sending Postscript write %d of %d", i + 1, nlast));
			outcome = ps_write_send(conn, &q->w, &rec);
			id = result_id(rec);
			last[i].status = outcome == PS_WRITE_APPLIED ? CS_APPLIED
				: outcome == PS_WRITE_RECONCILED ? CS_RECONCILED : CS_SKIPPED;
			if (id)
				last[i].id = MemoryContextStrdup(last_cxt, id);
			MemoryContextReset(cxt);
			i++;
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			n = current;
		int			code;
		int			landed = 0;
		bool		nothing_applied;
		bool		repeat_dup;
		const char *advice;
		const char *hint;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		Assert(n >= 0 && n < nlast);
		/*
		 * A cancel may have cut a request off after it was sent; one before
		 * any attempt of the write began to go out (in the rate limit's
		 * wait) sent nothing.
		 */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			last[n].status = conn == NULL || conn->requests_written == written_before
				? CS_NOT_SENT : CS_UNKNOWN;
		else
			last[n].status = edata->sqlerrcode == ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN
				? CS_UNKNOWN : CS_FAILED;
		last[n].error = MemoryContextStrdup(last_cxt, edata->message);

		/*
		 * What running the transaction again would do: nothing was applied
		 * (it may run again as a whole), or only writes that a repeat does
		 * not apply twice, or some that it would (repeat_dup).  A write
		 * whose outcome is unknown counts as applied.
		 */
		repeat_dup = applied_now_again > 0;
		for (int k = 0; k <= n; k++)
		{
			QueuedWrite *q = list_nth(writes, k);

			if (last[k].status != CS_APPLIED && last[k].status != CS_RECONCILED &&
				last[k].status != CS_UNKNOWN)
				continue;
			landed++;
			repeat_dup |= repeat_duplicates(q->w.spec);
		}
		nothing_applied = landed == 0 && applied_now == 0;
		Assert(!repeat_dup || !nothing_applied);

		/*
		 * Some SQLSTATEs tell a client to run the transaction again, and
		 * drivers and frameworks do so on their own.  Once a write that a
		 * repeat applies twice was applied (an event would be recorded
		 * twice), it is only an FDW error, and the hint says why.
		 */
		code = edata->sqlerrcode;
		if (repeat_dup && retried_by_clients(code))
			code = ERRCODE_FDW_ERROR;
		advice = nothing_applied
			? "Nothing of this transaction was applied: it may run again as a whole."
			: !repeat_dup
			? "Running the same statements again applies nothing twice: a write applied already changes nothing the second time, or is a conflict, which ON CONFLICT DO NOTHING skips."
			: "Send again only those not applied: the same statements run again would send the applied writes again, and Postscript takes a repeated event or webhook as a new one.";

		/*
		 * The failed write's own hint, unless it says to run the statement
		 * again (a row gone, an unknown outcome: class 40), which the
		 * advice then forbids
		 */
		hint = edata->hint;
		if (repeat_dup && ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK)
			hint = NULL;
		/* one write (an autocommit statement of one row): as it was */
		if (nlast == 1 && code == edata->sqlerrcode)
			ereport(ERROR,
					(errcode(edata->sqlerrcode),
					 errmsg("%s", edata->message),
					 edata->detail ? errdetail("%s", edata->detail)
					 : edata->sqlerrcode != ERRCODE_QUERY_CANCELED ? 0
					 : last[n].status == CS_UNKNOWN
					 ? errdetail("Its request had been sent: Postscript may or may not have applied it.")
					 : errdetail("Nothing was sent."),
					 edata->hint ? errhint("%s", edata->hint)
					 : edata->sqlerrcode == ERRCODE_QUERY_CANCELED && last[n].status == CS_UNKNOWN
					 ? errhint("SELECT * FROM postscript_fdw_last_commit() shows it as outcome unknown; look at the foreign table before sending it again.")
					 : 0,
					 edata->context ? errcontext("%s", edata->context) : 0,
					 errcontext("%s", last[n].label)));
		ereport(ERROR,
				(errcode(code),
				 errmsg("%s", edata->message),
				 errdetail("%s%sAt commit, write %d of %d failed. %s",
						   edata->detail ? edata->detail : "",
						   edata->detail == NULL ? ""
						   : edata->detail[strlen(edata->detail) - 1] == '.' ? " " : ". ",
						   n + 1, nlast, outcome_summary()),
				 errhint("%s%s%s%sSELECT * FROM postscript_fdw_last_commit() lists the writes. %s",
						 hint ? hint : "", hint ? " " : "",
						 code != edata->sqlerrcode ? not_retried_hint(edata->sqlerrcode) : "",
						 code != edata->sqlerrcode ? " " : "",
						 advice),
				 edata->context ? errcontext("%s", edata->context) : 0,
				 errcontext("%s, sent at commit", last[n].label)));
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	queue_sent = true;
}

/*
 * A write sent as its statement runs was applied: a transaction retried
 * from here on would run its statement again.
 */
void
ps_write_applied_now(const PsWrite *w)
{
	applied_now++;
	if (repeat_duplicates(w->spec))
		applied_now_again++;
}

/*
 * In the PG_CATCH of a write sent as its statement runs: re-raise the
 * error, as an FDW error where clients would retry its SQLSTATE on their
 * own once writes of the transaction were applied (they would be sent
 * again).  cxt: a memory context that outlives the catch.
 */
void
ps_write_rethrow(MemoryContext cxt)
{
	ErrorData  *edata;

	if (applied_now_again == 0)
		PG_RE_THROW();
	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	if (!retried_by_clients(edata->sqlerrcode))
	{
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	FlushErrorState();
	edata->hint = psprintf("%s%s%s",
						   edata->hint ? edata->hint : "", edata->hint ? " " : "",
						   not_retried_hint(edata->sqlerrcode));
	edata->sqlerrcode = ERRCODE_FDW_ERROR;
	ReThrowError(edata);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			if (queue != NIL)
				send_queue();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (queue != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that has queued Postscript writes"),
						 errdetail_plural("%d write waits for COMMIT; Postscript has no two-phase commit.",
										  "%d writes wait for COMMIT; Postscript has no two-phase commit.",
										  list_length(queue), list_length(queue)),
						 errhint("COMMIT the transaction instead, or ROLLBACK it.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:

			/*
			 * Checks PostgreSQL makes after the pre-commit callbacks (a
			 * serialization failure, a full NOTIFY queue) can still fail the
			 * commit: Postscript keeps what it applied all the same.
			 */
			if (queue_sent)
				ereport(WARNING,
						(errmsg("COMMIT failed after its Postscript writes were sent"),
						 errdetail_plural("%d write was sent; Postscript keeps what it applied, though the transaction was rolled back.",
										  "%d writes were sent; Postscript keeps what it applied, though the transaction was rolled back.",
										  nlast, nlast),
						 errhint("SELECT * FROM postscript_fdw_last_commit() lists them. Run again, they are sent again: a subscriber that exists is a conflict, which ON CONFLICT DO NOTHING skips; an event is recorded twice.")));
			/* FALLTHROUGH */
		default:
			/* commit, abort, prepare: the queue went with the transaction */
			queue = NIL;
			queue_cxt = NULL;
			queue_sent = false;
			applied_now = 0;
			applied_now_again = 0;
			break;
	}
}

/* ROLLBACK TO SAVEPOINT drops what was queued since the savepoint */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	foreach(lc, queue)
	{
		QueuedWrite *q = lfirst(lc);

		if (q->level < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			q->level = level - 1;
		else
		{
			queue = foreach_delete_current(queue, lc);
			pfree(q);
		}
	}
}

void
ps_write_queue_init(void)
{
	DefineCustomIntVariable("postscript_fdw.max_queued_size",
							"Memory that the writes queued until COMMIT may take in one transaction.",
							"Writes to Postscript are sent when the transaction commits; until then their requests are kept in memory.",
							&max_queued_kb,
							65536, 64, MAX_KILOBYTES,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}

/* ---------------------------------------------------------------- SQL */

/*
 * postscript_fdw_last_commit(): one row per write the last commit that had
 * queued writes tried to send, in order, with what became of it.
 */
Datum
postscript_fdw_last_commit(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < nlast; i++)
	{
		Datum		values[8];
		bool		nulls[8] = {0};

		values[0] = Int32GetDatum(i + 1);
		values[1] = CStringGetTextDatum(last[i].label);
		values[2] = CStringGetTextDatum(last[i].method);
		values[3] = CStringGetTextDatum(last[i].path);
		values[4] = last[i].body ? CStringGetTextDatum(last[i].body) : (Datum) 0;
		nulls[4] = last[i].body == NULL;
		values[5] = CStringGetTextDatum(status_names[last[i].status]);
		values[6] = last[i].id ? CStringGetTextDatum(last[i].id) : (Datum) 0;
		nulls[6] = last[i].id == NULL;
		values[7] = last[i].error ? CStringGetTextDatum(last[i].error) : (Datum) 0;
		nulls[7] = last[i].error == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
