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

/* one write's requests so far */
typedef struct WriteAttempts
{
	int			unknown;		/* requests whose outcome is unknown */
	int			attempts;		/* requests sent, retries included */
	double		waited_ms;		/* in backoff before sending them again */
} WriteAttempts;

/* the flags of the next request of write w */
static int
write_flags(const PsWrite *w, const WriteAttempts *wa)
{
	int			flags = PS_HTTP_ALLOW_4XX | PS_HTTP_CHANGES;

	if (w->spec->reconcile != PS_RECONCILE_IDEMPOTENT && w->spec->reconcile != PS_RECONCILE_GONE)
		flags |= PS_HTTP_WRITE;
	if (wa->unknown > 0)
		flags |= PS_HTTP_SENT_BEFORE;
	return flags;
}

/*
 * A request of write w was answered res (its retries made): true when the
 * write is done, with what became of it in *outcome and, for an applied
 * write, the row Postscript answered (or NULL) in *result; false when it is
 * to be sent again after *delay_ms.  Raises an error for anything else.
 */
static bool
write_answered(PsConn *conn, PsWrite *w, PsHttpResult *res, WriteAttempts *wa,
			   PsWriteOutcome *outcome, PsJson **result, double *delay_ms)
{
	const PsWriteSpec *spec = w->spec;
	PsApiAnswer answer;

	*result = NULL;
	wa->attempts += res->retries + 1;
	if (res->maybe_applied)
	{
		wa->unknown++;
		if (spec->reconcile == PS_RECONCILE_NONE)
			report_outcome_unknown(conn, w, res, wa->attempts,
								   "It cannot be looked up, so it was not sent again: that could apply it twice.");
		/* idempotent: http.c retried it as it retries a read */
		if (!(write_flags(w, wa) & PS_HTTP_WRITE))
			report_outcome_unknown(conn, w, res, wa->attempts,
								   "Sending it again is harmless: run it again when Postscript answers.");
		/* sent again after a backoff, as a read would be retried */
		*delay_ms = ps_http_backoff_ms(conn, wa->unknown - 1, &wa->waited_ms);
		if (*delay_ms < 0)
			report_outcome_unknown(conn, w, res, wa->attempts,
								   "Run it again when Postscript answers: if it was applied, Postscript answers a conflict (ON CONFLICT DO NOTHING skips it).");
		/* sent again: a conflict will prove an earlier attempt landed */
		return false;
	}
	if (res->status >= 200 && res->status < 300)
	{
		*result = parse_result(conn, w, res);
		*outcome = PS_WRITE_APPLIED;
		return true;
	}
	answer = ps_api_classify(res->status, res->body, res->len);
	/* a delete sent again after its answer was lost: the object is gone */
	if (spec->reconcile == PS_RECONCILE_GONE && res->sent_before &&
		PS_ANSWER_NO_SUCH_ID(answer))
	{
		*outcome = PS_WRITE_RECONCILED;
		return true;
	}
	if (answer == PS_ANSWER_CONFLICT)
	{
		if (wa->unknown > 0 && spec->reconcile == PS_RECONCILE_CONFLICT)
		{
			*outcome = PS_WRITE_RECONCILED;
			return true;
		}
		if (w->skip_conflicts)
		{
			*outcome = PS_WRITE_SKIPPED;
			return true;
		}
	}
	/* a create sent again, refused for another reason: the first may have landed */
	if (wa->unknown > 0)
		report_outcome_unknown(conn, w, res, wa->attempts,
							   "Check the row: if an earlier attempt was applied, sending it again answers a conflict (ON CONFLICT DO NOTHING skips it).");
	if (strstr(spec->path, "{id}") != NULL && PS_ANSWER_NO_SUCH_ID(answer))
		report_row_gone(conn, w, res);
	if (answer == PS_ANSWER_NOT_FOUND)
		report_unknown_object(conn, w, res);
	ps_report_http_status(conn, spec->method, w->path, res->status, res->body, res->len,
						  res->retries);
	pg_unreachable();
}

/*
 * Send one write now.  Returns what became of it and, for an applied write,
 * the row Postscript answered (or NULL); raises an error for anything else.
 */
PsWriteOutcome
ps_write_send(PsConn *conn, PsWrite *w, PsJson **result)
{
	WriteAttempts wa = {0};
	PsHttpResult res;
	PsWriteOutcome outcome;
	double		delay_ms;

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		ps_http_request(conn, w->spec->method, w->path, w->body, write_flags(w, &wa), &res);
		if (write_answered(conn, w, &res, &wa, &outcome, result, &delay_ms))
			return outcome;
		ps_sleep_ms(delay_ms, PS_WAIT_EVENT_RETRY);
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
	size_t		slen = w->subjects_len;
	char	   *p;

	if (queue_cxt == NULL)
		queue_cxt = AllocSetContextCreate(TopTransactionContext, "postscript_fdw write queue",
										  ALLOCSET_DEFAULT_SIZES);
	if (MemoryContextMemAllocated(queue_cxt, false) + sizeof(QueuedWrite) + plen + llen + blen + slen >
		(Size) max_queued_kb * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many Postscript writes queued in this transaction"),
				 errdetail("%d writes are queued; with %s they would take more than postscript_fdw.max_queued_size (%d kB).",
						   list_length(queue), w->label, max_queued_kb),
				 errhint("Writes are sent at commit: write fewer rows per transaction, or ask a superuser to raise postscript_fdw.max_queued_size.")));

	/* one chunk per write: the struct, then its strings */
	old = MemoryContextSwitchTo(queue_cxt);
	q = palloc(sizeof(QueuedWrite) + plen + llen + blen + slen);
	q->w = *w;
	p = (char *) (q + 1);
	q->w.path = memcpy(p, w->path, plen);
	q->w.label = memcpy(p + plen, w->label, llen);
	q->w.body = w->body ? memcpy(p + plen + llen, w->body, blen) : NULL;
	q->w.subjects = slen ? memcpy(p + plen + llen + blen, w->subjects, slen) : NULL;
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

/* a write of the commit being sent */
typedef struct CommitJob
{
	PsWrite    *w;
	WriteAttempts wa;
} CommitJob;

/*
 * The writes of a commit being sent: up to the connection's
 * max_concurrency in flight in one pipeline (http.c), started in queue
 * order when the rate limit lets them, their answers taken as they come; a
 * write that depends on one still in flight waits for it (may_start).  In
 * send_queue's memory.
 */
typedef struct CommitRun
{
	CommitJob  *jobs;
	int			n;
	int			next;			/* the first write not started */
	int			done;			/* writes with their final status */
	PsConn	   *conn;			/* of the pipeline */
	Oid			serverid;		/* whose writes it sends */
	Oid			userid;
	PsPipeline *pipe;
	int			size;			/* its size, and inflight's */
	int		   *inflight;		/* the writes in the pipeline, any order */
	int			count;
	int			taking;			/* the write whose answer is being taken,
								 * -1 while waiting */
	MemoryContext pipe_cxt;		/* pipe and inflight */
	MemoryContext answer_cxt;	/* one answer at a time */
	bool		stopping;		/* a write failed: start no more */
	ErrorData  *error;			/* the first write's failure */
	int			failed;			/* and its write */
	int			adding;			/* a write being started, -1 if none */
	int			blame;			/* a write taken whose failure is a cancel */
} CommitRun;

/*
 * w->subjects: the values of body's members under its spec's subject keys
 * (strings only), each ended by a NUL, in the current memory context
 */
void
ps_write_subjects(PsWrite *w, PsJson *body)
{
	StringInfoData buf;
	PsJson	   *v;

	w->subjects = NULL;
	w->subjects_len = 0;
	if (w->spec->subjects == NULL || body == NULL)
		return;
	initStringInfo(&buf);
	for (const char *const *k = w->spec->subjects; *k; k++)
		if (json_object_object_get_ex(body, *k, &v) && json_object_is_type(v, json_type_string))
			appendBinaryStringInfo(&buf, json_object_get_string(v),
								   json_object_get_string_len(v) + 1);
	w->subjects = buf.data;
	w->subjects_len = buf.len;
}

/*
 * Whether two writes of one spec change the same thing: the same object
 * path, or a subject in common
 */
static bool
same_subject(const PsWrite *a, const PsWrite *b)
{
	Assert(a->spec == b->spec);
	if (strstr(a->spec->path, "{id}") != NULL && strcmp(a->path, b->path) == 0)
		return true;
	for (size_t i = 0; i < a->subjects_len; i += strlen(a->subjects + i) + 1)
		for (size_t k = 0; k < b->subjects_len; k += strlen(b->subjects + k) + 1)
			if (strcmp(a->subjects + i, b->subjects + k) == 0)
				return true;
	return false;
}

/*
 * Whether write i may start while the writes in the pipeline are not
 * answered: one of the same spec and connection that changes none of
 * what they change.  Writes of a spec without subjects, or of another
 * spec, wait for all before them (a tag then an event, an opt-out then an
 * opt-in keep their order).
 */
static bool
may_start(CommitRun *run, int i)
{
	PsWrite    *w = run->jobs[i].w;

	if (run->count == 0)
		return true;
	if (run->count >= run->size || w->spec->subjects == NULL)
		return false;
	for (int k = 0; k < run->count; k++)
	{
		PsWrite    *o = run->jobs[run->inflight[k]].w;

		if (o->spec != w->spec || o->serverid != w->serverid || o->userid != w->userid ||
			same_subject(w, o))
			return false;
	}
	return true;
}

/*
 * Put write i into the pipeline, to leave no sooner than delay_ms from now.
 * It is in inflight first: an error in ps_pipeline_send (a cancel while
 * libcurl starts it) may come after the pipeline took it, and then
 * abandon_run must see it.
 */
static void
start_write(CommitRun *run, int i, double delay_ms)
{
	CommitJob  *job = &run->jobs[i];
	PsWrite    *w = job->w;

	Assert(run->count < run->size);
	run->inflight[run->count++] = i;
	ps_pipeline_send(run->pipe, w->spec->method, w->path, w->body, write_flags(w, &job->wa),
					 delay_ms, i);
}

/* write i is out of the pipeline */
static void
inflight_remove(CommitRun *run, int i)
{
	for (int k = 0; k < run->count; k++)
		if (run->inflight[k] == i)
		{
			run->inflight[k] = run->inflight[--run->count];
			return;
		}
	Assert(false);
}

/* start the writes that may start now */
static void
fill(CommitRun *run)
{
	while (!run->stopping && run->next < run->n)
	{
		int			i = run->next;
		CommitJob  *job = &run->jobs[i];

		run->adding = i;
		if (run->count == 0 &&
			(run->conn == NULL || run->serverid != job->w->serverid ||
			 run->userid != job->w->userid))
		{
			/* a pipeline on this write's connection */
			MemoryContext old;

			run->conn = NULL;
			run->pipe = NULL;
			MemoryContextReset(run->pipe_cxt);
			run->conn = ps_get_connection(job->w->serverid, job->w->userid);
			run->serverid = job->w->serverid;
			run->userid = job->w->userid;
			run->size = Max(run->conn->opts->max_concurrency, 1);
			old = MemoryContextSwitchTo(run->pipe_cxt);
			run->pipe = ps_pipeline_create(run->conn, run->size, NULL, NULL, 0);
			run->inflight = palloc(sizeof(int) * run->size);
			MemoryContextSwitchTo(old);
		}
		run->adding = -1;
		if (!may_start(run, i))
			break;
		run->next++;
		start_write(run, i, 0);
	}
	run->adding = -1;
}

/* write i is done: record what became of it */
static void
write_done(CommitRun *run, int i, CommitStatus status, PsJson *rec)
{
	char	   *id = result_id(rec);

	last[i].status = status;
	if (id)
		last[i].id = MemoryContextStrdup(last_cxt, id);
	run->done++;
}

/*
 * Wait for the first write in the pipeline to be answered and see what
 * became of it: done, sent again (after a backoff), or failed.  A write's
 * failure is recorded (the first one kept) and stops further starts; an
 * error while waiting (a cancel) is raised.
 */
static void
take_one(CommitRun *run)
{
	volatile bool resending = false;
	MemoryContext cxt = CurrentMemoryContext;
	int			i;

	run->taking = -1;
	PG_TRY();
	{
		PsHttpResult res;
		PsJson	   *rec;
		PsWriteOutcome outcome;
		double		delay_ms;
		CommitJob  *job;

		MemoryContextSwitchTo(run->answer_cxt);
		ps_pipeline_next_any(run->pipe, &res, &run->taking);
		i = run->taking;
		job = &run->jobs[i];
		inflight_remove(run, i);
		if (write_answered(run->conn, job->w, &res, &job->wa, &outcome, &rec, &delay_ms))
			write_done(run, i, outcome == PS_WRITE_APPLIED ? CS_APPLIED
					   : outcome == PS_WRITE_RECONCILED ? CS_RECONCILED : CS_SKIPPED, rec);
		else if (run->stopping)
		{
			/* not sent again once a write failed: it may have been applied */
			last[i].error = MemoryContextStrdup(last_cxt, "not sent again after another write failed");
			write_done(run, i, CS_UNKNOWN, NULL);
		}
		else
		{
			resending = true;
			start_write(run, i, delay_ms);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		CommitJob  *job;

		MemoryContextSwitchTo(cxt);
		/*
		 * Waiting, before any answer was taken, or sending it again (it is
		 * in inflight again, maybe in the pipeline): not this answer's
		 * failure, the whole run's
		 */
		if (run->taking < 0 || resending)
			PG_RE_THROW();
		i = run->taking;
		job = &run->jobs[i];
		for (int k = 0; k < run->count; k++)
			if (run->inflight[k] == i)
				inflight_remove(run, i);
		if (geterrcode() == ERRCODE_QUERY_CANCELED)
		{
			/* answered or not, it had been sent */
			last[i].status = CS_UNKNOWN;
			run->blame = i;
			PG_RE_THROW();
		}
		edata = CopyErrorData();
		FlushErrorState();
		last[i].status = edata->sqlerrcode == ERRCODE_T_R_STATEMENT_COMPLETION_UNKNOWN ||
			job->wa.unknown > 0 ? CS_UNKNOWN : CS_FAILED;
		last[i].error = MemoryContextStrdup(last_cxt, edata->message);
		run->done++;
		run->stopping = true;
		if (run->error == NULL)
		{
			run->error = edata;
			run->failed = i;
		}
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	MemoryContextReset(run->answer_cxt);
}

/*
 * An error raised while the commit's writes were in flight (a cancel, a
 * failure to drive the requests): what became of each, and the write it is
 * reported for: one taken when it came (run->blame), else one whose
 * connection could not be had (run->adding, never sent), else the oldest
 * in flight.
 */
static int
abandon_run(CommitRun *run, int code)
{
	int			blame = run->blame;
	int			first = -1;

	for (int n = 0; n < run->count; n++)
	{
		int			k = run->inflight[n];
		PsPipeFate	fate = run->pipe != NULL ? ps_pipeline_fate(run->pipe, k)
			: PS_FATE_NOT_SENT;

		/*
		 * An answer that came but was not taken: a 2xx was applied (its id
		 * is lost); a 4xx refused it, unless an earlier request of the write
		 * may have been applied
		 */
		last[k].status = fate == PS_FATE_APPLIED ? CS_APPLIED
			: run->jobs[k].wa.unknown > 0 || fate == PS_FATE_MAYBE ? CS_UNKNOWN
			: fate == PS_FATE_REFUSED ? CS_FAILED : CS_NOT_SENT;
	}
	/* the first in queue order of those in flight and not applied */
	for (int n = 0; blame < 0 && run->adding < 0 && n < run->count; n++)
	{
		int			k = run->inflight[n];

		if (last[k].status != CS_APPLIED && (first < 0 || k < first))
			first = k;
	}
	if (blame < 0 && run->adding < 0)
		blame = first;
	if (blame < 0 && run->adding >= 0)
	{
		blame = run->adding;
		last[blame].status = code == ERRCODE_QUERY_CANCELED ? CS_NOT_SENT : CS_FAILED;
	}
	if (blame < 0)
		blame = Min(run->next, run->n - 1);
	return blame;
}

/*
 * The commit failed at write n (its status recorded): raise the error,
 * keeping its SQLSTATE and message, with a detail that says which writes
 * were applied and which were not.
 */
static void
report_commit_failure(List *writes, ErrorData *edata, int n)
{
	int			code;
	int			landed = 0;
	bool		nothing_applied;
	bool		repeat_dup;
	const char *advice;
	const char *hint;

	Assert(n >= 0 && n < nlast);
	if (last[n].error == NULL)
		last[n].error = MemoryContextStrdup(last_cxt, edata->message);

	/*
	 * What running the transaction again would do: nothing was applied (it
	 * may run again as a whole), or only writes that a repeat does not apply
	 * twice, or some that it would (repeat_dup).  A write whose outcome is
	 * unknown counts as applied.
	 */
	repeat_dup = applied_now_again > 0;
	for (int k = 0; k < nlast; k++)
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
	 * Some SQLSTATEs tell a client to run the transaction again, and drivers
	 * and frameworks do so on their own.  Once a write that a repeat applies
	 * twice was applied (an event would be recorded twice), it is only an FDW
	 * error, and the hint says why.
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
	 * The failed write's own hint, unless it says to run the statement again
	 * (a row gone, an unknown outcome: class 40), which the advice then
	 * forbids
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

/*
 * Send the queue at commit, up to max_concurrency writes in flight (see
 * CommitRun).  A failure fails the commit once the writes in flight are
 * answered: the error of the first write that failed keeps its SQLSTATE and
 * message, and its detail says which writes were applied and which were
 * not.
 */
static void
send_queue(void)
{
	List	   *writes = queue;
	MemoryContext cxt;
	MemoryContext old;
	CommitRun  *run;
	ListCell   *lc;
	int			i = 0;
	char		title[80];
	int			title_len;
	const char *shown = get_ps_display(&title_len);
	char	   *before = pnstrdup(shown, title_len);	/* shown again at the end */

	/* whatever happens now, these are not sent twice */
	queue = NIL;
	record_commit(writes);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "postscript_fdw commit",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	run = palloc0(sizeof(CommitRun));
	run->n = nlast;
	run->jobs = palloc0(sizeof(CommitJob) * Max(nlast, 1));
	foreach(lc, writes)
		run->jobs[i++].w = &((QueuedWrite *) lfirst(lc))->w;
	run->pipe_cxt = AllocSetContextCreate(cxt, "postscript_fdw commit requests",
										  ALLOCSET_DEFAULT_SIZES);
	run->answer_cxt = AllocSetContextCreate(cxt, "postscript_fdw commit answer",
											ALLOCSET_DEFAULT_SIZES);
	run->adding = run->blame = -1;
	PG_TRY();
	{
		for (;;)
		{
			fill(run);
			if (run->count == 0)
				break;
			snprintf(title, sizeof(title), "COMMIT: sending Postscript writes, %d of %d done",
					 run->done, nlast);
			set_ps_display(title);
			take_one(run);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			n;

		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		n = abandon_run(run, edata->sqlerrcode);
		last[n].error = MemoryContextStrdup(last_cxt, edata->message);
		/* the transfers in flight are abandoned with the pipeline's memory */
		MemoryContextDelete(cxt);
		set_ps_display(before);
		report_commit_failure(writes, edata, n);
	}
	PG_END_TRY();
	Assert(run->next == run->n || run->stopping);
	if (run->error != NULL)
	{
		/* every write answered; the error is in cxt, which the abort frees */
		MemoryContextReset(run->pipe_cxt);
		set_ps_display(before);
		report_commit_failure(writes, run->error, run->failed);
	}
	Assert(run->done == nlast);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	set_ps_display(before);
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
