/*-------------------------------------------------------------------------
 *
 * http.c
 *		API requests: retries with backoff, pages fetched concurrently,
 *		cancellation, and API failures turned into PostgreSQL errors.
 *
 * Every wait (the transfer itself, a rate-limit pause, a backoff sleep)
 * wakes at least every 100 ms to CHECK_FOR_INTERRUPTS, so a cancel or a
 * statement_timeout ends a query promptly; a transfer cut short by an
 * error is detached from the multi handle on the way out.  Every request
 * leaves only when the rate limiter (ratelimit.c) lets it.
 *
 * A request that is not idempotent (PS_HTTP_WRITE) always goes out on a
 * fresh connection: when a reused keep-alive connection dies before any
 * answer, libcurl silently sends the request again on a new one, which
 * would apply a POST twice while the FDW believed it sent it once.  On a
 * fresh connection libcurl never does that, so every attempt the FDW
 * counts is exactly one request on the wire.
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
	bool		finished;		/* run_multi saw it end */
	CURLcode	rc;				/* and how */
	double		sent_at;		/* when it was started (ps_now_seconds) */
	uint64		ticket;			/* its place in the rate limit's window */
	bool		confirmed;		/* ps_ratelimit_sent was told it left */

	/*
	 * Incremental parsing (reads of pages): a 2xx body is fed to the JSON
	 * tokener chunk by chunk as it arrives, and never copied; any other
	 * body is kept in body for the error message.  tok and json are
	 * json-c's (malloc), freed by the caller on every path.
	 */
	CURL	   *handle;
	json_tokener *tok;			/* NULL: keep the body, parse nothing */
	bool		decided;		/* the status of this response was read */
	bool		streaming;		/* this response is being parsed */
	PsJson	   *json;			/* the complete value */
	enum json_tokener_error jerr;	/* first parse error, or _continue */
	unsigned char carry[4];		/* a UTF-8 character cut by a chunk edge */
	int			ncarry;
} Transfer;

static json_tokener *new_tokener(PsConn *conn);
static double pipe_pump(PsPipeline *p);
static void pipe_confirm(PsPipeline *p);
static PsJson *keep_json(PsJson *root);
static void json_error(enum json_tokener_error jerr, int64 len, const char *method,
					   const char *path) pg_attribute_noreturn();

/* ---------------------------------------------------------------- curl callbacks */

/* only JSON white space in p[0..n) */
static bool
only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* the length of the UTF-8 sequence lead byte c starts (1 for anything else) */
static int
utf8_seq_len(unsigned char c)
{
	return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* how many bytes at the end of p[0..n) start a UTF-8 character cut short */
static size_t
utf8_cut_tail(const unsigned char *p, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++)
	{
		unsigned char c = p[n - k];

		if ((c & 0xC0) == 0x80)
			continue;			/* a continuation byte: look further back */
		return (size_t) utf8_seq_len(c) > k ? k : 0;
	}
	return 0;
}

/*
 * Feed bytes to the tokener.  Runs inside libcurl, so it raises nothing:
 * the first problem is kept in jerr and reported once the transfer is
 * over.
 */
static void
feed_raw(Transfer *tr, const char *p, size_t n)
{
	if (tr->jerr != json_tokener_continue)
		return;					/* already failed */
	if (tr->json != NULL)
	{
		/* a complete value: only white space may follow */
		if (!only_space(p, n))
			tr->jerr = json_tokener_error_parse_unexpected;
		return;
	}
	while (n > 0)
	{
		int			chunk = (int) Min(n, (size_t) INT_MAX);
		PsJson	   *o = json_tokener_parse_ex(tr->tok, p, chunk);
		enum json_tokener_error e = json_tokener_get_error(tr->tok);

		if (o != NULL)
		{
			size_t		used = json_tokener_get_parse_end(tr->tok);

			tr->json = o;
			if (!only_space(p + used, n - used))
				tr->jerr = json_tokener_error_parse_unexpected;
			return;
		}
		if (e != json_tokener_continue)
		{
			tr->jerr = e;
			return;
		}
		p += chunk;
		n -= chunk;
	}
}

/*
 * Feed one chunk of a 2xx body.  json-c (0.16) rejects a multi-byte UTF-8
 * character split between two calls as invalid, so a character cut by the
 * chunk's end is held back and completed with the next chunk's first bytes.
 */
static void
feed_json(Transfer *tr, const char *p, size_t n)
{
	size_t		tail;

	if (tr->ncarry > 0)
	{
		unsigned char buf[4];
		int			need = utf8_seq_len(tr->carry[0]);
		int			m = tr->ncarry;

		memcpy(buf, tr->carry, m);
		while (m < need && n > 0 && ((unsigned char) *p & 0xC0) == 0x80)
		{
			buf[m++] = (unsigned char) *p++;
			n--;
		}
		if (m < need && n == 0)
		{
			/* still cut short: wait for more */
			memcpy(tr->carry, buf, m);
			tr->ncarry = m;
			return;
		}
		tr->ncarry = 0;
		feed_raw(tr, (const char *) buf, m);
	}
	tail = utf8_cut_tail((const unsigned char *) p, n);
	feed_raw(tr, p, n - tail);
	memcpy(tr->carry, p + n - tail, tail);
	tr->ncarry = (int) tail;
}

/* the body is complete: a character still held back is fed as it is */
static bool
json_complete(Transfer *tr)
{
	if (tr->ncarry > 0)
	{
		feed_raw(tr, (const char *) tr->carry, tr->ncarry);
		tr->ncarry = 0;
	}
	return tr->json != NULL && tr->jerr == json_tokener_continue;
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *tr = (Transfer *) userdata;
	size_t		n = size * nmemb;
	StringInfo	b = &tr->body;

	if (tr->received + (int64) n > tr->max_bytes)
	{
		tr->too_large = true;
		return 0;				/* aborts the transfer */
	}
	tr->received += n;
	if (tr->tok != NULL && !tr->decided)
	{
		long		status = 0;

		curl_easy_getinfo(tr->handle, CURLINFO_RESPONSE_CODE, &status);
		tr->streaming = status >= 200 && status < 300;
		tr->decided = true;
	}
	if (tr->streaming)
	{
		feed_json(tr, ptr, n);
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

/* errcontext with the request, never a secret: method and path only */
static char *
describe_request(const char *method, const char *path)
{
	size_t		len = strlen(path);

	if (len > 200)
		return psprintf("%s %.200s...", method, path);
	return psprintf("%s %s", method, path);
}

char *
ps_api_error_message(const char *body, size_t len)
{
	json_tokener *tok;
	PsJson *root;
	PsJson *v;
	char	   *msg = NULL;

	if (body == NULL || len == 0)
		return NULL;
	tok = json_tokener_new_ex(16);
	if (tok == NULL)
		return NULL;
	root = json_tokener_parse_ex(tok, body, (int) Min(len, (size_t) INT_MAX));
	json_tokener_free(tok);
	if (root == NULL)
		return NULL;

	if (json_object_is_type(root, json_type_object))
	{
		if (json_object_object_get_ex(root, "error_message", &v) &&
			json_object_is_type(v, json_type_string))
		{
			PsJson *code;

			if (json_object_object_get_ex(root, "error_code", &code) &&
				json_object_is_type(code, json_type_int))
				msg = psprintf("%s (error_code %d)", json_object_get_string(v),
							   json_object_get_int(code));
			else
				msg = pstrdup(json_object_get_string(v));
		}
		else if (json_object_object_get_ex(root, "errors", &v) &&
				 json_object_is_type(v, json_type_array))
		{
			StringInfoData buf;

			initStringInfo(&buf);
			for (size_t i = 0; i < json_object_array_length(v) && i < 10; i++)
			{
				PsJson *e = json_object_array_get_idx(v, i);
				PsJson *m,
						   *loc;

				if (buf.len)
					appendStringInfoString(&buf, "; ");
				if (json_object_object_get_ex(e, "loc", &loc) &&
					json_object_is_type(loc, json_type_array))
				{
					for (size_t j = 0; j < json_object_array_length(loc); j++)
						appendStringInfo(&buf, "%s%s", j ? "." : "",
										 json_object_get_string(json_object_array_get_idx(loc, j)));
					appendStringInfoString(&buf, ": ");
				}
				if (json_object_object_get_ex(e, "msg", &m))
					appendStringInfoString(&buf, json_object_get_string(m));
			}
			msg = buf.data;
		}
		else if (json_object_object_get_ex(root, "error", &v) &&
				 json_object_is_type(v, json_type_string))
			msg = pstrdup(json_object_get_string(v));
		else if (json_object_object_get_ex(root, "message", &v) &&
				 json_object_is_type(v, json_type_string))
			msg = pstrdup(json_object_get_string(v));
	}
	json_object_put(root);
	return msg;
}

static void
report_http_status(PsConn *conn, const char *method, const char *path,
				   long status, const char *body, size_t len)
{
	char	   *apimsg = ps_api_error_message(body, len);
	char	   *req = describe_request(method, path);
	int			code;
	const char *msg;
	const char *hint = NULL;

	switch (status)
	{
		case 400:
		case 422:
			code = ERRCODE_INVALID_PARAMETER_VALUE;
			msg = "Postscript rejected the request as invalid";
			break;
		case 401:
			code = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
			msg = "Postscript rejected the credentials";
			hint = "Check the api_key option of the user mapping: it must be the shop's private key (sk_...), or a partner key together with shop_token.";
			break;
		case 403:
			code = ERRCODE_INSUFFICIENT_PRIVILEGE;
			msg = "Postscript denied access";
			hint = "A partner key (sk_partner_...) needs the shop_token option on the user mapping; a shop key must not be a public pk_ key.";
			break;
		case 404:
			code = ERRCODE_FDW_TABLE_NOT_FOUND;
			msg = "Postscript has no such object or endpoint";
			hint = "Check the table's resource and endpoint options.";
			break;
		case 409:
			code = ERRCODE_UNIQUE_VIOLATION;
			msg = "Postscript reports a conflict";
			break;
		case 429:
			code = ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
			msg = "Postscript's rate limit was still exceeded after retrying";
			hint = "Lower the server's rate_limit option, or raise max_retries or max_retry_wait.";
			break;
		default:
			if (status >= 300 && status < 400)
			{
				code = ERRCODE_FDW_ERROR;
				msg = "Postscript answered with a redirect, which is not followed";
				hint = "Check the server's api_url option; redirects are refused so that the API key is never sent to another host.";
			}
			else if (status >= 500)
			{
				code = ERRCODE_FDW_ERROR;
				msg = "Postscript failed to answer the request";
			}
			else
			{
				code = ERRCODE_FDW_ERROR;
				msg = "Postscript answered with an unexpected status";
			}
			break;
	}

	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", msg),
			 apimsg ? errdetail("HTTP %ld: %s", status, apimsg)
			 : errdetail("HTTP %ld.", status),
			 hint ? errhint("%s", hint) : 0,
			 errcontext("postscript_fdw request %s on server \"%s\"", req,
						conn->server_name)));
}

static void
report_transport_error(PsConn *conn, const char *method, const char *path,
					   CURLcode rc, Transfer *tr)
{
	char	   *req = describe_request(method, path);
	int			code;
	const char *msg;
	const char *hint = NULL;

	if (tr->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Postscript response exceeds max_response_size (%lld bytes)",
						(long long) tr->max_bytes),
				 errhint("Raise the server's max_response_size option if the response is legitimate."),
				 errcontext("postscript_fdw request %s on server \"%s\"", req, conn->server_name)));
	if (tr->oom || rc == CURLE_OUT_OF_MEMORY)
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
		case CURLE_BAD_CONTENT_ENCODING:
			code = ERRCODE_PROTOCOL_VIOLATION;
			msg = "could not decode the Postscript API response";
			hint = "Its Content-Encoding header names a compression its body is not in.";
			break;
		case CURLE_WEIRD_SERVER_REPLY:
			code = ERRCODE_PROTOCOL_VIOLATION;
			msg = "the Postscript API sent a malformed HTTP response";
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
			 hint ? errhint("%s", hint) : 0,
			 errcontext("postscript_fdw request %s on server \"%s\"", req, conn->server_name)));
}

/* ---------------------------------------------------------------- one attempt */

/*
 * Point an easy handle at one request; *ctype gets the private header list a
 * request with a body needs (the caller frees it), *url the URL.
 */
static void
setup_easy(PsConn *conn, CURL *h, const char *method, const char *path,
		   const char *body, int flags, Transfer *tr, struct curl_slist **ctype,
		   char **url)
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
	curl_easy_setopt(h, CURLOPT_PRIVATE, tr);
	/* no transparent resend of a write: see the top of this file */
	if (flags & PS_HTTP_WRITE)
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);

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
	tr->finished = false;
	tr->rc = CURLE_OK;
	tr->ticket = 0;
	tr->confirmed = false;
	tr->handle = h;
	tr->decided = tr->streaming = false;
	tr->jerr = json_tokener_continue;
	tr->ncarry = 0;
	if (tr->tok != NULL)
		json_tokener_reset(tr->tok);
	if (tr->json != NULL)
	{
		json_object_put(tr->json);
		tr->json = NULL;
	}
}

/*
 * One finished transfer in the connection's statistics, and a DEBUG1 line
 * (method, path, outcome; never a header) for troubleshooting.  A 429 also
 * tells the rate limiter, which slows every request of the credential.
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
	{
		conn->stats.status_429++;
		ps_ratelimit_throttled(conn, tr->retry_after, tr->sent_at);
	}
	else if (status >= 500)
		conn->stats.status_5xx++;
	else if (status >= 400)
		conn->stats.status_4xx++;
	else if (status >= 200 && status < 300)
		conn->stats.status_2xx++;
}

/*
 * Once libcurl has written tr's request (it got past connecting), tell the
 * rate limiter when it really left.
 */
static void
confirm_sent(PsConn *conn, Transfer *tr)
{
	curl_off_t	pretransfer = 0;

	if (tr->confirmed || tr->ticket == 0)
		return;
	curl_easy_getinfo(tr->handle, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
	if (pretransfer > 0 || tr->finished)
	{
		ps_ratelimit_sent(conn, tr->ticket);
		tr->confirmed = true;
	}
}

/*
 * Drive the multi handle until the transfer await has ended; interruptible.
 * Every transfer that ends meanwhile (pages fetched ahead share the handle)
 * is marked in its own Transfer.  With a pipeline, its queued requests are
 * started on every turn as the rate limit lets them.
 */
static void
run_multi(PsConn *conn, Transfer *await, PsPipeline *pipe)
{
	CURLM	   *m = (CURLM *) conn->multi;

	for (;;)
	{
		int			running = 0;
		int			nfds;
		CURLMsg    *msg;
		int			left;
		double		timeout = POLL_INTERVAL_MS;

		if (pipe != NULL)
		{
			double		ms = pipe_pump(pipe);

			if (ms > 0)
				timeout = Min(timeout, ceil(ms));
		}
		if (curl_multi_perform(m, &running) != CURLM_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("libcurl could not drive the Postscript API requests")));
		confirm_sent(conn, await);
		if (pipe != NULL)
			pipe_confirm(pipe);
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
		{
			Transfer   *tr = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &tr);
			Assert(tr != NULL && tr->handle == msg->easy_handle);
			tr->rc = msg->data.result;
			tr->finished = true;
		}
		if (await->finished)
			break;
		curl_multi_poll(m, NULL, 0, (int) timeout, &nfds);
		CHECK_FOR_INTERRUPTS();
	}
}

static CURLcode
perform_once(PsConn *conn, const char *method, const char *path,
			 const char *body, int flags, uint64 ticket, Transfer *tr,
			 long *status)
{
	CURL	   *h = (CURL *) conn->easy;
	CURLM	   *m = (CURLM *) conn->multi;
	char	   *url;
	struct curl_slist *ctype;

	setup_easy(conn, h, method, path, body, flags, tr, &ctype, &url);
	*status = 0;

	tr->sent_at = ps_now_seconds();
	tr->ticket = ticket;
	curl_multi_add_handle(m, h);
	conn->busy = true;
	PG_TRY();
	{
		run_multi(conn, tr, NULL);
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

	if (tr->rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	count_transfer(conn, tr->rc, *status, tr, method, path);
	return tr->rc;
}

/* ---------------------------------------------------------------- pages fetched ahead */

/*
 * A pipeline of GETs (the next pages of a scan): requests are queued in
 * order, each leaves as soon as the rate limiter lets it, and up to the
 * pipeline's size are in flight at once; each body is parsed as it
 * arrives.  Results are taken in the order the requests were queued.  The
 * caller keeps at most size requests queued and not yet taken, so a new
 * page starts as soon as one is taken, never waiting for a whole round.
 */
typedef struct PipeEntry
{
	CURL	   *handle;			/* this slot's easy handle, reused */
	char	   *path;
	char	   *url;
	bool		started;		/* attached to the multi handle */
	Transfer	tr;
} PipeEntry;

struct PsPipeline
{
	PsConn	   *conn;
	int			size;			/* slots */
	int			queued;			/* requests queued so far */
	int			nstarted;		/* of which started */
	int			taken;			/* of which taken */
	PipeEntry  *slots;			/* request i is in slots[i % size] */
	double		held_since;		/* > 0: the next start waits for the limit */
	MemoryContextCallback cleanup;
};

/* detach, and free what libcurl and json-c hold, of one slot */
static void
pipe_release(PsPipeline *p, PipeEntry *e)
{
	if (e->started)
		curl_multi_remove_handle((CURLM *) p->conn->multi, e->handle);
	e->started = false;
	if (e->tr.tok != NULL)
		json_tokener_free(e->tr.tok);
	e->tr.tok = NULL;
	if (e->tr.json != NULL)
		json_object_put(e->tr.json);
	e->tr.json = NULL;
}

/* the pipeline's memory is going away (end of scan, rescan, error) */
static void
pipe_cleanup(void *arg)
{
	PsPipeline *p = arg;

	for (int i = 0; i < p->size; i++)
	{
		pipe_release(p, &p->slots[i]);
		if (p->slots[i].handle != NULL)
			curl_easy_cleanup(p->slots[i].handle);
		p->slots[i].handle = NULL;
	}
	Assert(p->conn->active_pipelines > 0);
	p->conn->active_pipelines--;
}

/* start the queued requests the rate limiter lets go now */
static double
pipe_pump(PsPipeline *p)
{
	while (p->nstarted < p->queued)
	{
		PipeEntry  *e = &p->slots[p->nstarted % p->size];
		uint64		ticket;
		double		wait_ms = ps_ratelimit_try(p->conn, &ticket);

		if (wait_ms > 0)
		{
			if (p->held_since == 0)
				p->held_since = ps_now_seconds();
			return wait_ms;
		}
		if (p->held_since > 0)
			p->conn->stats.rate_wait_ms += (ps_now_seconds() - p->held_since) * 1000.0;
		p->held_since = 0;
		e->tr.tok = new_tokener(p->conn);
		e->tr.sent_at = ps_now_seconds();
		e->tr.ticket = ticket;
		curl_multi_add_handle((CURLM *) p->conn->multi, e->handle);
		e->started = true;
		p->nstarted++;
	}
	return 0;
}

/* tell the rate limiter which of the started requests have left */
static void
pipe_confirm(PsPipeline *p)
{
	for (int i = p->taken; i < p->nstarted; i++)
		confirm_sent(p->conn, &p->slots[i % p->size].tr);
}

/*
 * A pipeline of at most size requests on conn, freed with the current
 * memory context: transfers still in flight then are abandoned.
 */
PsPipeline *
ps_pipeline_create(PsConn *conn, int size)
{
	PsPipeline *p = palloc0(sizeof(PsPipeline));

	Assert(size >= 1);
	p->conn = conn;
	p->size = size;
	p->slots = palloc0(sizeof(PipeEntry) * size);
	p->cleanup.func = pipe_cleanup;
	p->cleanup.arg = p;
	conn->active_pipelines++;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &p->cleanup);
	for (int i = 0; i < size; i++)
	{
		p->slots[i].handle = curl_easy_init();
		if (p->slots[i].handle == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
		initStringInfo(&p->slots[i].tr.body);
		p->slots[i].tr.max_bytes = conn->opts->max_response_bytes;
	}
	return p;
}

/* requests queued and not yet taken */
int
ps_pipeline_pending(PsPipeline *p)
{
	return p->queued - p->taken;
}

/*
 * Queue a GET of path (copied); it starts at once if the rate limiter lets
 * it, else while the pipeline is next waited on.
 */
void
ps_pipeline_add(PsPipeline *p, const char *path)
{
	PipeEntry  *e = &p->slots[p->queued % p->size];
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(p));
	struct curl_slist *ctype;
	int			running;

	Assert(ps_pipeline_pending(p) < p->size);
	Assert(!e->started && e->tr.tok == NULL && e->tr.json == NULL);
	if (e->path)
		pfree(e->path);
	if (e->url)
		pfree(e->url);
	e->path = pstrdup(path);
	setup_easy(p->conn, e->handle, "GET", e->path, NULL, 0, &e->tr, &ctype, &e->url);
	Assert(ctype == NULL);
	MemoryContextSwitchTo(old);
	p->queued++;
	(void) pipe_pump(p);
	curl_multi_perform((CURLM *) p->conn->multi, &running);
	pipe_confirm(p);
}

/*
 * Wait for the oldest request not yet taken.  A 2xx answer holding one
 * complete JSON value comes back in res->json (kept in the current memory
 * context); any other outcome (a transport failure, 429, 5xx, a body that
 * is not JSON) comes back with json NULL, for the caller to repeat with
 * ps_http_request(), which retries and reports errors as for any request.
 */
void
ps_pipeline_next(PsPipeline *p, PsHttpResult *res)
{
	PipeEntry  *e = &p->slots[p->taken % p->size];
	long		status = 0;

	Assert(ps_pipeline_pending(p) > 0);
	memset(res, 0, sizeof(PsHttpResult));
	run_multi(p->conn, &e->tr, p);
	Assert(e->started);
	curl_multi_remove_handle((CURLM *) p->conn->multi, e->handle);
	e->started = false;
	p->taken++;
	if (e->tr.rc == CURLE_OK)
		curl_easy_getinfo(e->handle, CURLINFO_RESPONSE_CODE, &status);
	count_transfer(p->conn, e->tr.rc, status, &e->tr, "GET", e->path);
	res->status = status;
	res->len = e->tr.received;
	if (e->tr.rc == CURLE_OK && status >= 200 && status < 300 && json_complete(&e->tr))
	{
		res->json = keep_json(e->tr.json);
		e->tr.json = NULL;
	}
	pipe_release(p, e);
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
		uint64		ticket;

		ticket = ps_ratelimit_wait(conn);
		rc = perform_once(conn, method, path, body, flags, ticket, tr, &status);

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
				ps_sleep_ms(delay_ms);
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
		if ((status == 404 && (flags & PS_HTTP_ALLOW_404)) ||
			(status == 409 && (flags & PS_HTTP_ALLOW_409)))
			return;
		if (is_write && status == 500)
		{
			result->maybe_applied = true;
			return;
		}
		report_http_status(conn, method, path, status, tr->body.data, tr->body.len);
	}
}

void
ps_http_request(PsConn *conn, const char *method, const char *path,
				const char *body, int flags, PsHttpResult *result)
{
	Transfer   *tr = palloc0(sizeof(Transfer));

	initStringInfo(&tr->body);
	tr->max_bytes = conn->opts->max_response_bytes;
	memset(result, 0, sizeof(PsHttpResult));
	if (flags & PS_HTTP_PARSE)
		tr->tok = new_tokener(conn);

	PG_TRY();
	{
		request_loop(conn, method, path, body, flags, result, tr);
		if (tr->tok != NULL && result->status >= 200 && result->status < 300)
		{
			if (!json_complete(tr))
				json_error(tr->json == NULL ? tr->jerr : json_tokener_error_parse_unexpected,
						   tr->received, method, path);
			result->json = keep_json(tr->json);
			tr->json = NULL;
			result->body = NULL;
			result->len = tr->received;
		}
	}
	PG_FINALLY();
	{
		/* json-c's memory, on every path (an error, a cancel, a retry) */
		if (tr->tok != NULL)
			json_tokener_free(tr->tok);
		if (tr->json != NULL)
			json_object_put(tr->json);
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------- JSON */

static void
json_put_callback(void *arg)
{
	json_object_put((PsJson *) arg);
}

/* a tokener with the server's depth limit, strict, validating UTF-8 */
static json_tokener *
new_tokener(PsConn *conn)
{
	json_tokener *tok = json_tokener_new_ex(conn->opts->max_json_depth);

	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

/* tie a tree's lifetime to the current memory context */
static PsJson *
keep_json(PsJson *root)
{
	MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

	cb->func = json_put_callback;
	cb->arg = root;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return root;
}

/* a body that is not one JSON value; jerr _continue: it ended too early */
static void
json_error(enum json_tokener_error jerr, int64 len, const char *method, const char *path)
{
	char	   *req = describe_request(method, path);

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_JSON_TEXT),
			 errmsg("Postscript sent a malformed JSON response"),
			 errdetail("%s (%lld bytes received).",
					   jerr == json_tokener_continue || jerr == json_tokener_success
					   ? "The response ended in the middle of a JSON value"
					   : json_tokener_error_desc(jerr), (long long) len),
			 errcontext("postscript_fdw request %s", req)));
}

PsJson *
ps_parse_json(const char *body, size_t len, int max_depth,
			  const char *method, const char *path)
{
	json_tokener *tok = json_tokener_new_ex(max_depth);
	PsJson *root;
	enum json_tokener_error jerr;
	size_t		consumed;

	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (len > (size_t) INT_MAX)
	{
		json_tokener_free(tok);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Postscript response is too large to parse")));
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int) len);
	jerr = json_tokener_get_error(tok);
	consumed = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (root != NULL && jerr == json_tokener_success && !only_space(body + consumed, len - consumed))
	{
		json_object_put(root);
		root = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	if (root == NULL)
		json_error(jerr, len, method, path);
	return keep_json(root);
}

/* percent-encode everything but unreserved characters (querystring.c) */
char *
ps_url_encode(const char *s)
{
	return ps_qs_encode(s, palloc(3 * strlen(s) + 1));
}
