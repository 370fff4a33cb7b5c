/*-------------------------------------------------------------------------
 *
 * http.c
 *		API requests: rate limit, retries with backoff, cancellation, and
 *		API failures turned into PostgreSQL errors.
 *
 * Every wait (the transfer itself, a rate-limit pause, a backoff sleep)
 * wakes at least every 100 ms to CHECK_FOR_INTERRUPTS, so a cancel or a
 * statement_timeout ends a query promptly; a transfer cut short by an
 * error is detached from the multi handle on the way out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "postscript_fdw.h"
#include "querystring.h"

#define POLL_INTERVAL_MS	100
#define BACKOFF_BASE_MS		250
#define BACKOFF_CAP_MS		10000

typedef struct Transfer
{
	StringInfoData body;		/* the body, unless it is parsed as it comes */
	int64		received;		/* body bytes received */
	int64		max_bytes;
	bool		too_large;
	bool		oom;
	double		retry_after;	/* seconds, < 0 if none */
	char		errbuf[CURL_ERROR_SIZE];

	/*
	 * Reads of pages: a 2xx body is fed to the page scanner chunk by chunk
	 * as it arrives, and never copied; any other body is kept in body for
	 * the error message.  The scanner's memory is its memory context's.
	 */
	CURL	   *handle;
	PsPageScan *scan;			/* NULL: keep the body, scan nothing */
	bool		decided;		/* the status of this response was read */
	bool		streaming;		/* this response is being scanned */
} Transfer;

/* ---------------------------------------------------------------- waits */

/* sleep ms milliseconds, interruptible */
static void
ps_sleep_ms(double ms, uint32 wait_event)
{
	double		until = ps_now_seconds() + ms / 1000.0;

	for (;;)
	{
		double		left = (until - ps_now_seconds()) * 1000.0;

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) Min(left + 1, POLL_INTERVAL_MS), wait_event);
		ResetLatch(MyLatch);
	}
}

/* take one token from the connection's bucket, waiting for it if needed */
static void
rate_limit_wait(PsConn *conn)
{
	double		rate = conn->opts->rate_limit;
	double		now;

	if (rate <= 0)
		return;
	if (conn->opts->shared_rate_limit && ps_ratelimit_shared())
	{
		double		wait_ms = ps_ratelimit_reserve(conn->bucket_key, rate,
												   conn->opts->rate_burst);

		if (wait_ms > 0)
		{
			ps_sleep_ms(wait_ms, PS_WAIT_EVENT_RATE_LIMIT);
			conn->stats.rate_wait_ms += wait_ms;
		}
		return;
	}
	now = ps_now_seconds();
	conn->tokens = Min((double) conn->opts->rate_burst,
					   conn->tokens + (now - conn->last_refill) * rate);
	conn->last_refill = now;
	if (conn->tokens < 1.0)
	{
		double		wait_ms = (1.0 - conn->tokens) / rate * 1000.0;

		ps_sleep_ms(wait_ms, PS_WAIT_EVENT_RATE_LIMIT);
		conn->stats.rate_wait_ms += wait_ms;
		now = ps_now_seconds();
		conn->tokens = Min((double) conn->opts->rate_burst,
						   conn->tokens + (now - conn->last_refill) * rate);
		conn->last_refill = now;
	}
	conn->tokens -= 1.0;
}

/* ---------------------------------------------------------------- curl callbacks */

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *tr = (Transfer *) userdata;
	size_t		n = size * nmemb;
	StringInfo	b = &tr->body;

	/*
	 * A cancel is taken between two calls into libcurl, but one call may hand
	 * over many megabytes (a compressed page): a read pauses here instead, so
	 * that the caller's CHECK_FOR_INTERRUPTS comes at once.  That raises, so
	 * nothing resumes the transfer (at worst, request_timeout would end it).
	 */
	if (tr->scan != NULL && (QueryCancelPending || ProcDiePending))
		return CURL_WRITEFUNC_PAUSE;
	if (tr->received + (int64) n > tr->max_bytes)
	{
		tr->too_large = true;
		return 0;				/* aborts the transfer */
	}
	tr->received += n;
	if (tr->scan != NULL && !tr->decided)
	{
		long		status = 0;

		curl_easy_getinfo(tr->handle, CURLINFO_RESPONSE_CODE, &status);
		tr->streaming = status >= 200 && status < 300;
		tr->decided = true;
	}
	if (tr->streaming)
	{
		/* a parse error is kept in the scanner, reported after the transfer */
		(void) ps_scan_feed(tr->scan, ptr, n);
		return n;
	}
	if (b->len + n + 1 > (size_t) b->maxlen)
	{
		size_t		newlen = Max((size_t) b->maxlen * 2, b->len + n + 1);
		char	   *nd;

		/* never longjmp out of libcurl: allocate without raising */
		nd = MemoryContextAllocExtended(GetMemoryChunkContext(b->data), newlen,
										MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (nd == NULL)
		{
			tr->oom = true;
			return 0;
		}
		memcpy(nd, b->data, b->len);
		pfree(b->data);
		b->data = nd;
		b->maxlen = newlen;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	Transfer   *tr = (Transfer *) userdata;
	size_t		n = size * nitems;

	if (n > 12 && pg_strncasecmp(buffer, "Retry-After:", 12) == 0)
	{
		char		tmp[32];
		size_t		k = Min(n - 12, sizeof(tmp) - 1);
		char	   *end;
		double		v;

		memcpy(tmp, buffer + 12, k);
		tmp[k] = '\0';
		v = strtod(tmp, &end);
		if (end != tmp && v >= 0)
			tr->retry_after = v;
	}
	return n;
}

/* ---------------------------------------------------------------- errors */

static void
report_transport_error(PsConn *conn, const char *method, const char *path,
					   CURLcode rc, Transfer *tr)
{
	char	   *req = ps_describe_request(method, path);
	int			code;
	const char *msg;

	if (tr->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Postscript response exceeds max_response_size (%lld bytes)",
						(long long) tr->max_bytes),
				 errhint("Raise the server's max_response_size option if the response is legitimate."),
				 errcontext("postscript_fdw request %s on server \"%s\"", req, conn->server_name)));
	if (tr->oom)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while receiving a Postscript response"),
				 errcontext("postscript_fdw request %s on server \"%s\"", req, conn->server_name)));

	switch (rc)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			code = ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
			msg = "could not connect to the Postscript API";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			code = ERRCODE_CONNECTION_FAILURE;
			msg = "Postscript API request timed out";
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CACERT_BADFILE:
			code = ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION;
			msg = "TLS connection to the Postscript API failed";
			break;
		default:
			code = ERRCODE_CONNECTION_FAILURE;
			msg = "lost the connection to the Postscript API";
			break;
	}
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", msg),
			 errdetail("%s", tr->errbuf[0] ? tr->errbuf : curl_easy_strerror(rc)),
			 errcontext("postscript_fdw request %s on server \"%s\"", req, conn->server_name)));
}

/* ---------------------------------------------------------------- one attempt */

/*
 * Point an easy handle at one request; *ctype gets the private header list a
 * request with a body needs (the caller frees it), *url the URL.
 */
static void
setup_easy(PsConn *conn, CURL *h, const char *method, const char *path,
		   const char *body, Transfer *tr, struct curl_slist **ctype, char **url)
{
	const PsServerOptions *o = conn->opts;
	struct curl_slist *hdrs = (struct curl_slist *) conn->headers;

	*url = psprintf("%s%s", o->api_url, path);
	*ctype = NULL;
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, *url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long) o->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long) o->request_timeout_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long) o->low_speed_time_s);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, tr);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, tr);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, tr->errbuf);

	if (body != NULL)
	{
		/* a private list: the shared one plus Content-Type */
		for (struct curl_slist *l = hdrs; l; l = l->next)
			*ctype = curl_slist_append(*ctype, l->data);
		*ctype = curl_slist_append(*ctype, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, *ctype);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	else
	{
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		if (strcmp(method, "GET") == 0)
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		else
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}

	resetStringInfo(&tr->body);
	tr->received = 0;
	tr->too_large = tr->oom = false;
	tr->retry_after = -1;
	tr->errbuf[0] = '\0';
	tr->handle = h;
	tr->decided = tr->streaming = false;
	if (tr->scan != NULL)
		ps_scan_reset(tr->scan);
}

/*
 * One finished transfer in the connection's statistics, and a DEBUG1 line
 * (method, path, outcome; never a header) for troubleshooting.
 */
static void
count_transfer(PsConn *conn, CURLcode rc, long status, Transfer *tr,
			   const char *method, const char *path)
{
	ereport(DEBUG1,
			(errmsg_internal("postscript_fdw: %s %s: %s%ld, %d bytes received",
							 method, path, rc == CURLE_OK ? "HTTP " : "transport error ",
							 rc == CURLE_OK ? status : (long) rc, (int) tr->received)));
	conn->stats.requests++;
	conn->stats.bytes_received += tr->received;
	if (rc != CURLE_OK)
		conn->stats.transport_errors++;
	else if (status == 429)
		conn->stats.status_429++;
	else if (status >= 500)
		conn->stats.status_5xx++;
	else if (status >= 400)
		conn->stats.status_4xx++;
	else if (status >= 200 && status < 300)
		conn->stats.status_2xx++;
}

/* drive the multi handle until it has no running transfer; interruptible */
static void
run_multi(CURLM *m, void (*done) (CURLMsg *msg, void *arg), void *arg)
{
	for (;;)
	{
		int			running = 0;
		int			nfds;
		CURLMsg    *msg;
		int			left;

		if (curl_multi_perform(m, &running) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("libcurl could not drive the Postscript API requests")));
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				done(msg, arg);
		if (running == 0)
			break;
		PS_WAITING(PS_WAIT_EVENT_HTTP, curl_multi_poll(m, NULL, 0, POLL_INTERVAL_MS, &nfds));
		CHECK_FOR_INTERRUPTS();
	}
}

static void
one_done(CURLMsg *msg, void *arg)
{
	*(CURLcode *) arg = msg->data.result;
}

static CURLcode
perform_once(PsConn *conn, const char *method, const char *path,
			 const char *body, Transfer *tr, long *status)
{
	CURL	   *h = (CURL *) conn->easy;
	CURLM	   *m = (CURLM *) conn->multi;
	char	   *url;
	CURLcode	result = CURLE_OK;
	struct curl_slist *ctype;

	setup_easy(conn, h, method, path, body, tr, &ctype, &url);
	*status = 0;

	curl_multi_add_handle(m, h);
	conn->busy = true;
	PG_TRY();
	{
		run_multi(m, one_done, &result);
	}
	PG_FINALLY();
	{
		curl_multi_remove_handle(m, h);
		conn->busy = false;
		if (ctype)
			curl_slist_free_all(ctype);
		pfree(url);
	}
	PG_END_TRY();

	if (result == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	count_transfer(conn, result, *status, tr, method, path);
	return result;
}

/* ---------------------------------------------------------------- concurrent GETs */

typedef struct ManyState
{
	int			n;
	CURL	  **handles;
	CURLcode   *results;
} ManyState;

static void
many_done(CURLMsg *msg, void *arg)
{
	ManyState  *ms = arg;

	for (int i = 0; i < ms->n; i++)
		if (ms->handles[i] == msg->easy_handle)
			ms->results[i] = msg->data.result;
}

/*
 * GET several paths at once (the next pages of a scan), each after taking
 * its token from the rate limit, each body scanned as it arrives into
 * scans[i].  A result with status 200..299 and a complete JSON value holds
 * it in page; any other outcome (a transport failure, 429, 5xx, a body
 * that is not JSON) comes back with page NULL, and the caller repeats that
 * request with ps_http_read(), which retries and reports errors as for any
 * request.
 */
void
ps_http_get_many(PsConn *conn, char **paths, int n, PsPageScan **scans,
				 PsHttpResult *results)
{
	CURLM	   *m = (CURLM *) conn->multi;
	ManyState	ms;
	Transfer   *trs = palloc0(sizeof(Transfer) * n);
	char	  **urls = palloc0(sizeof(char *) * n);
	long	   *statuses = palloc0(sizeof(long) * n);
	struct curl_slist *unused;
	int			added = 0;

	ms.n = n;
	ms.handles = palloc0(sizeof(CURL *) * n);
	ms.results = palloc0(sizeof(CURLcode) * n);
	memset(results, 0, sizeof(PsHttpResult) * n);

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			ms.handles[i] = curl_easy_init();
			if (ms.handles[i] == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("could not create a libcurl handle")));
			initStringInfo(&trs[i].body);
			trs[i].max_bytes = conn->opts->max_response_bytes;
			trs[i].scan = scans[i];
			setup_easy(conn, ms.handles[i], "GET", paths[i], NULL, &trs[i], &unused, &urls[i]);
			ms.results[i] = CURLE_OK;
		}
		for (int i = 0; i < n; i++)
		{
			rate_limit_wait(conn);
			curl_multi_add_handle(m, ms.handles[i]);
			added++;
		}
		run_multi(m, many_done, &ms);
		for (int i = 0; i < n; i++)
		{
			if (ms.results[i] == CURLE_OK)
				curl_easy_getinfo(ms.handles[i], CURLINFO_RESPONSE_CODE, &statuses[i]);
			count_transfer(conn, ms.results[i], statuses[i], &trs[i], "GET", paths[i]);
			results[i].status = statuses[i];
			results[i].len = trs[i].received;
			if (ms.results[i] == CURLE_OK && statuses[i] >= 200 && statuses[i] < 300 &&
				ps_scan_finish(trs[i].scan) == PS_SCAN_OK)
				results[i].page = trs[i].scan;
		}
	}
	PG_FINALLY();
	{
		/* also on error or cancel: no handle outlives the call */
		for (int i = 0; i < n; i++)
		{
			if (ms.handles[i] != NULL)
			{
				if (i < added)
					curl_multi_remove_handle(m, ms.handles[i]);
				curl_easy_cleanup(ms.handles[i]);
			}
		}
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------- the request */

/* nothing reached the server: safe to retry any method */
static bool
not_sent(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		rc == CURLE_COULDNT_RESOLVE_PROXY;
}

static bool
transport_retryable(CURLcode rc)
{
	return not_sent(rc) || rc == CURLE_OPERATION_TIMEDOUT ||
		rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
		rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

static void
request_loop(PsConn *conn, const char *method, const char *path,
			 const char *body, int flags, PsHttpResult *result, Transfer *tr)
{
	bool		is_write = (flags & PS_HTTP_WRITE) != 0;
	double		waited_ms = 0;
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		long		status;
		CURLcode	rc;
		bool		retry;
		double		delay_ms;

		rate_limit_wait(conn);
		rc = perform_once(conn, method, path, body, tr, &status);

		if (rc != CURLE_OK)
		{
			if (tr->too_large || tr->oom)
				retry = false;
			else if (is_write && !not_sent(rc))
			{
				/* it may have been applied: the caller reconciles */
				result->status = 0;
				result->maybe_applied = true;
				result->retries = attempt;
				result->body = tr->errbuf[0] ? pstrdup(tr->errbuf)
					: pstrdup(curl_easy_strerror(rc));
				result->len = strlen(result->body);
				return;
			}
			else
				retry = transport_retryable(rc);
		}
		else if (status == 429)
			retry = true;
		else if (status == 502 || status == 503 || status == 504)
		{
			if (is_write)
			{
				result->status = status;
				result->maybe_applied = true;
				result->retries = attempt;
				result->body = tr->body.data;
				result->len = tr->body.len;
				return;
			}
			retry = true;
		}
		else
			retry = false;

		if (retry && attempt < conn->opts->max_retries)
		{
			double		cap = Min((double) BACKOFF_CAP_MS,
								  BACKOFF_BASE_MS * pow(2.0, attempt));

			/* full jitter, unless the server said when */
			if (rc == CURLE_OK && tr->retry_after >= 0)
				delay_ms = tr->retry_after * 1000.0;
			else
				delay_ms = pg_prng_double(&pg_global_prng_state) * cap;
			if (waited_ms + delay_ms <= conn->opts->max_retry_wait_ms)
			{
				conn->stats.retries++;
				waited_ms += delay_ms;
				ps_sleep_ms(delay_ms, PS_WAIT_EVENT_RETRY);
				conn->stats.backoff_wait_ms += delay_ms;
				continue;
			}
		}

		/* final answer */
		if (rc != CURLE_OK)
			report_transport_error(conn, method, path, rc, tr);
		result->status = status;
		result->body = tr->body.data;
		result->len = tr->body.len;
		result->retries = attempt;
		if (status >= 200 && status < 300)
			return;
		if (((flags & PS_HTTP_ALLOW_404) &&
			 ps_api_unknown_id(status, tr->body.data, tr->body.len)) ||
			((flags & PS_HTTP_ALLOW_4XX) && status >= 400 && status < 500))
			return;
		if (is_write && status == 500)
		{
			result->maybe_applied = true;
			return;
		}
		ps_report_http_status(conn, method, path, status, tr->body.data, tr->body.len);
	}
}

/* one request, its body scanned into scan (if not NULL) when it is a 2xx */
static void
http_request(PsConn *conn, const char *method, const char *path, const char *body,
			 int flags, PsPageScan *scan, PsHttpResult *result)
{
	Transfer   *tr = palloc0(sizeof(Transfer));

	initStringInfo(&tr->body);
	tr->max_bytes = conn->opts->max_response_bytes;
	tr->scan = scan;
	memset(result, 0, sizeof(PsHttpResult));
	request_loop(conn, method, path, body, flags, result, tr);
	if (scan != NULL && result->status >= 200 && result->status < 300)
	{
		ps_page_finish(scan, tr->received, method, path);
		result->page = scan;
		result->body = NULL;
		result->len = tr->received;
	}
}

void
ps_http_request(PsConn *conn, const char *method, const char *path,
				const char *body, int flags, PsHttpResult *result)
{
	http_request(conn, method, path, body, flags, NULL, result);
}

void
ps_http_read(PsConn *conn, const char *path, int flags, PsPageScan *scan,
			 PsHttpResult *result)
{
	Assert(scan != NULL);
	http_request(conn, "GET", path, NULL, flags, scan, result);
}

/* percent-encode everything but unreserved characters (querystring.c) */
char *
ps_url_encode(const char *s)
{
	return ps_qs_encode(s, palloc(3 * strlen(s) + 1));
}
