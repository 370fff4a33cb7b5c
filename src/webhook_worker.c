/*-------------------------------------------------------------------------
 *
 * webhook_worker.c
 *		The webhook receiver: a background worker serving HTTP with
 *		libmicrohttpd, storing each delivery through ps_webhook_store().
 *
 * Registered by _PG_init when the library is preloaded and
 * postscript_fdw.webhook_port is set; the postmaster restarts it when it
 * dies.  libmicrohttpd runs without threads of its own ("external select"
 * mode, with its sockets in an epoll set): the worker's main loop waits on
 * that set's descriptor, its latch and postmaster death in a WaitEventSet,
 * for at most the time MHD_get_timeout allows, and lets it work with
 * MHD_run.
 * Every callback, and so every PostgreSQL call, runs on the worker's one
 * thread; no error may leave a callback (it would jump through
 * libmicrohttpd's frames), so each delivery runs in its own transaction
 * under PG_TRY and its outcome becomes a status:
 *
 *	200	stored, or stored before (a duplicate)
 *	400	not JSON, or not a Postscript event
 *	401	no Postscript-Signature header (before the rate cap: it costs none)
 *	403	a signature that is not the webhook token
 *	405	not a POST
 *	413	larger than postscript_fdw.webhook_max_body
 *	429	above postscript_fdw.webhook_rate_limit
 *	503	not stored (the database refused or failed, whatever the SQLSTATE,
 *		54000 of a body within the cap included): Postscript retries
 *
 * A 200 leaves only after the commit, which is synchronous whatever
 * synchronous_commit says elsewhere.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <microhttpd.h>
#include <limits.h>
#include <netdb.h>

#include "postscript_fdw.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

PGDLLEXPORT void postscript_fdw_webhook_main(Datum main_arg);

#define PS_WEBHOOK_WORKER	"postscript_fdw webhook receiver"

/* a delivery being read: its body so far (malloc'd: freed by libmicrohttpd's
 * completion callback, outside any PostgreSQL memory context) */
typedef struct PsDelivery
{
	char	   *body;
	size_t		len;
	size_t		cap;
	size_t		seen;			/* bytes received, kept or not */
} PsDelivery;

/* the receiver's token bucket: postscript_fdw.webhook_rate_limit per second */
static double rate_tokens = -1;
static TimestampTz rate_last = 0;

void
ps_webhook_init(void)
{
	BackgroundWorker worker;

	ps_webhook_define_gucs();
	if (!process_shared_preload_libraries_in_progress || ps_webhook_port == 0)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "postscript_fdw");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "postscript_fdw_webhook_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, PS_WEBHOOK_WORKER);
	snprintf(worker.bgw_type, BGW_MAXLEN, PS_WEBHOOK_WORKER);
	RegisterBackgroundWorker(&worker);
}

static bool
ps_rate_take(void)
{
	double		rate = ps_webhook_rate_limit;
	double		capacity = Max(1.0, rate);
	TimestampTz now = GetCurrentTimestamp();

	if (rate <= 0)
		return true;
	if (rate_tokens < 0)
		rate_tokens = capacity;
	else
		rate_tokens = Min(capacity, rate_tokens + (now - rate_last) / 1000000.0 * rate);
	rate_last = now;
	if (rate_tokens < 1.0)
		return false;
	rate_tokens -= 1.0;
	return true;
}

/*
 * The HTTP status of a refusal raised by ps_webhook_store() for a body of
 * len bytes.  54000 is the body-size refusal only when the body is above the
 * cap: the same SQLSTATE from anywhere else (an index entry too large, say)
 * is a failure to store, which Postscript must retry, not a 413, after which
 * it would stop.
 */
static unsigned int
ps_webhook_status(int sqlerrcode, size_t len)
{
	if (sqlerrcode == ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION)
		return MHD_HTTP_UNAUTHORIZED;
	if (sqlerrcode == ERRCODE_INVALID_PASSWORD)
		return MHD_HTTP_FORBIDDEN;
	if (sqlerrcode == ERRCODE_PROGRAM_LIMIT_EXCEEDED && ps_webhook_too_large(len))
		return MHD_HTTP_CONTENT_TOO_LARGE;
	if (ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_DATA_EXCEPTION ||
		sqlerrcode == ERRCODE_STATEMENT_TOO_COMPLEX)
		return MHD_HTTP_BAD_REQUEST;
	return MHD_HTTP_SERVICE_UNAVAILABLE;
}

/* the answer's body: never the error message, which names server and role */
static const char *
ps_webhook_reason(unsigned int status)
{
	switch (status)
	{
		case MHD_HTTP_OK:
			return "{\"stored\": true}";
		case MHD_HTTP_BAD_REQUEST:
			return "{\"error\": \"not a Postscript webhook event\"}";
		case MHD_HTTP_UNAUTHORIZED:
			return "{\"error\": \"no Postscript-Signature header\"}";
		case MHD_HTTP_FORBIDDEN:
			return "{\"error\": \"wrong Postscript-Signature\"}";
		case MHD_HTTP_METHOD_NOT_ALLOWED:
			return "{\"error\": \"only POST is accepted\"}";
		case MHD_HTTP_CONTENT_TOO_LARGE:
			return "{\"error\": \"body too large\"}";
		case MHD_HTTP_TOO_MANY_REQUESTS:
			return "{\"error\": \"rate limit exceeded\"}";
		default:
			return "{\"error\": \"not stored, try again later\"}";
	}
}

static enum MHD_Result
ps_reply(struct MHD_Connection *connection, unsigned int status)
{
	const char *body = ps_webhook_reason(status);
	struct MHD_Response *response;
	enum MHD_Result ret;

	response = MHD_create_response_from_buffer(strlen(body), (void *) body,
											   MHD_RESPMEM_PERSISTENT);
	if (response == NULL)
		return MHD_NO;
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_SERVICE_UNAVAILABLE)
		MHD_add_response_header(response, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	ret = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return ret;
}

/*
 * Store one delivery in a transaction of its own; the status to answer.
 * Errors are caught here: they become statuses and a log line.
 */
static unsigned int
ps_webhook_deliver(const char *signature, const char *body, size_t len)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile unsigned int status = MHD_HTTP_OK;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "webhook delivery");
	PG_TRY();
	{
		if (ps_webhook_server[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("postscript_fdw.webhook_server is not set"),
					 errhint("Name the foreign server whose user mapping holds webhook_token.")));
		ps_webhook_store(ps_webhook_server, body, len, signature, true);
		PopActiveSnapshot();
		CommitTransactionCommand();
		/* a worker's table statistics reach autovacuum only when flushed */
		pgstat_report_stat(true);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		status = ps_webhook_status(edata->sqlerrcode, len);

		/*
		 * A 503 is retried; a 400 answers a delivery that carried the right
		 * signature (it is checked first) and will never be stored, so
		 * Postscript gives up on it after its retries: both are logged.
		 * Refusals of unsigned or oversized requests are not, lest a flood
		 * fill the log.
		 */
		ereport(status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_BAD_REQUEST
				? LOG : DEBUG1,
				(errmsg("webhook delivery answered %u: %s", status, edata->message),
				 edata->detail
				 ? errdetail_internal("SQLSTATE %s: %s", unpack_sql_state(edata->sqlerrcode),
									  edata->detail)
				 : errdetail_internal("SQLSTATE %s", unpack_sql_state(edata->sqlerrcode))));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_IDLE, NULL);
	return status;
}

/*
 * libmicrohttpd's request callback: called once with the headers, then once
 * per piece of body, then once more with none when the body is complete.
 */
static enum MHD_Result
ps_webhook_request(void *cls, struct MHD_Connection *connection, const char *url,
				   const char *method, const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	PsDelivery *d = *con_cls;

	if (d == NULL)
	{
		const char *length;

		/* refusals that need no body are answered before reading it */
		if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
			return ps_reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED);
		/* an unsigned request costs no transaction and none of the cap */
		if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
										PS_SIGNATURE_HEADER) == NULL)
			return ps_reply(connection, MHD_HTTP_UNAUTHORIZED);
		if (!ps_rate_take())
			return ps_reply(connection, MHD_HTTP_TOO_MANY_REQUESTS);
		length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
											 MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (length != NULL && ps_webhook_too_large(strtoull(length, NULL, 10)))
			return ps_reply(connection, MHD_HTTP_CONTENT_TOO_LARGE);
		d = calloc(1, sizeof(PsDelivery));
		if (d == NULL)
			return MHD_NO;
		*con_cls = d;
		return MHD_YES;
	}

	if (*upload_data_size > 0)
	{
		/*
		 * A chunked body has no length to check beforehand.  Past the cap it
		 * is read and dropped, so that the client gets its 413 (libmicrohttpd
		 * sends no answer before the request is read); a body that goes on
		 * for sixteen times the cap is cut off, without an answer: no
		 * response may be queued while the body is being read (the API's
		 * rule, which 0.9.75 enforces), so closing the connection is the
		 * only way to stop a sender that does not end.
		 */
		d->seen += *upload_data_size;
		if (ps_webhook_too_large(d->seen))
		{
			free(d->body);
			d->body = NULL;
			d->len = d->cap = 0;
			*upload_data_size = 0;
			return ps_webhook_too_large(d->seen / 16) ? MHD_NO : MHD_YES;
		}
		if (d->len + *upload_data_size + 1 > d->cap)
		{
			size_t		cap = Max(d->cap * 2, d->len + *upload_data_size + 1);
			char	   *body = realloc(d->body, cap);

			if (body == NULL)
				return MHD_NO;
			d->body = body;
			d->cap = cap;
		}
		memcpy(d->body + d->len, upload_data, *upload_data_size);
		d->len += *upload_data_size;
		d->body[d->len] = '\0';
		*upload_data_size = 0;
		return MHD_YES;
	}

	if (ps_webhook_too_large(d->seen))
		return ps_reply(connection, MHD_HTTP_CONTENT_TOO_LARGE);
	return ps_reply(connection,
					ps_webhook_deliver(MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
																   PS_SIGNATURE_HEADER),
									   d->body ? d->body : "", d->len));
}

static void
ps_webhook_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
					 enum MHD_RequestTerminationCode toe)
{
	PsDelivery *d = *con_cls;

	if (d != NULL)
	{
		free(d->body);
		free(d);
		*con_cls = NULL;
	}
}

static void ps_webhook_mhd_log(void *cls, const char *fmt, va_list ap) pg_attribute_printf(2, 0);

static void
ps_webhook_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	ereport(LOG, (errmsg("webhook receiver: %s", buf)));
}

static struct MHD_Daemon *
ps_webhook_listen(void)
{
	struct addrinfo hints = {0};
	struct addrinfo *ai;
	char		port[16];
	int			rc;
	struct MHD_Daemon *daemon;

	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", ps_webhook_port);
	rc = getaddrinfo(ps_webhook_listen_address, port, &hints, &ai);
	if (rc != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid postscript_fdw.webhook_listen_address \"%s\": %s",
						ps_webhook_listen_address, gai_strerror(rc)),
				 errhint("Give a numeric IPv4 or IPv6 address, such as 127.0.0.1 or ::1.")));

	daemon = MHD_start_daemon(MHD_USE_ERROR_LOG | MHD_USE_EPOLL |
							  (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
							  (uint16_t) ps_webhook_port, NULL, NULL,
							  ps_webhook_request, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, ps_webhook_mhd_log, NULL,
							  MHD_OPTION_SOCK_ADDR, ai->ai_addr,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
							  MHD_OPTION_NOTIFY_COMPLETED, ps_webhook_completed, NULL,
							  MHD_OPTION_END);
	freeaddrinfo(ai);
	if (daemon == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("webhook receiver could not listen on %s port %d",
						ps_webhook_listen_address, ps_webhook_port),
				 errhint("Is another process using the port?  The worker tries again in a few seconds.")));
	return daemon;
}

void
postscript_fdw_webhook_main(Datum main_arg)
{
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	WaitEventSet *set;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(ps_webhook_database,
										 ps_webhook_role[0] ? ps_webhook_role : NULL, 0);
	pgstat_report_appname(PS_WEBHOOK_WORKER);

	/* a 200 promises the event is on disk; a lock held elsewhere must not
	 * hold every delivery */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);

	daemon = ps_webhook_listen();
	ereport(LOG,
			(errmsg("webhook receiver listening on %s port %d, database \"%s\"",
					ps_webhook_listen_address, ps_webhook_port, ps_webhook_database)));

	/*
	 * libmicrohttpd keeps its sockets in an epoll set of its own, whose one
	 * descriptor is readable when any of them is ready: the worker waits on
	 * it, its latch and postmaster death
	 */
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL)
		elog(ERROR, "libmicrohttpd has no epoll descriptor");
	set = ps_create_wait_event_set(3);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(set, WL_SOCKET_READABLE, info->epoll_fd, NULL, NULL);

	for (;;)
	{
		MHD_UNSIGNED_LONG_LONG mhd_timeout;
		long		timeout = -1;
		WaitEvent	event;

		if (MHD_get_timeout(daemon, &mhd_timeout) == MHD_YES)
			timeout = (long) Min(mhd_timeout, (MHD_UNSIGNED_LONG_LONG) LONG_MAX);
		(void) WaitEventSetWait(set, timeout, &event, 1, PS_WAIT_EVENT_WEBHOOK);

		ResetLatch(MyLatch);
		/*
		 * Between deliveries a cancel (pg_cancel_backend) has nothing to
		 * cancel, as in an idle backend: taken here, it would end the worker
		 * (an ERROR outside a delivery is FATAL) and refuse deliveries until
		 * the restart.  One during a delivery ends that delivery: 503.
		 */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MHD_run(daemon);
	}
}
