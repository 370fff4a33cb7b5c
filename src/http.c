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
 * A request that changes something (PS_HTTP_WRITE, PS_HTTP_CHANGES)
 * always goes out on a fresh connection: when a reused keep-alive
 * connection dies before any answer, libcurl silently sends the request
 * again on a new one, which would apply a POST twice while the FDW
 * believed it sent it once, and would hide from the FDW that a PATCH or
 * DELETE may have been applied before (its outcome, and how a later
 * answer reads, depend on that).  On a fresh connection libcurl never does
 * that, so every attempt the FDW counts is exactly one request on the
 * wire, and a lost answer is a transport error that attempt_again() sees.
 *
 * Requests accept gzip, and a gzip body is decoded here, not by libcurl:
 * kept compressed as it arrives, then decoded whole by libdeflate
 * (gunzip.c) when the transfer ends, and only then scanned or kept.
 * libdeflate decodes a page about five times faster than zlib's streaming
 * inflate (which libcurl uses), and inflate was a third of a scan's CPU;
 * the price is that a compressed body is held whole, decoded, while it is
 * scanned (bounded by max_response_size like any body).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <math.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "gunzip.h"
#include "postscript_fdw.h"
#include "querystring.h"

#define POLL_INTERVAL_MS	100
#define BACKOFF_BASE_MS		250
#define BACKOFF_CAP_MS		10000
#define FEED_CHUNK			(1024 * 1024)	/* decoded bytes scanned between interrupt checks */
#define RETRY_AFTER_MAX_S	3600	/* the longest Retry-After taken */
#define GROUP_WAIT_MAX_MS	1000	/* the longest answers are left unread
										 * for a group (run_multi) */
#define LATE_READ_GUARD_MS	50	/* answers are read that long before a
								 * timeout (pipe_reads_late) */
#define GROUP_OPEN_MS		20	/* how long a group takes new starts
								 * (pipe_pump) */

/* the body's Content-Encoding, as its header named it */
typedef enum PsBodyEncoding
{
	ENC_IDENTITY = 0,
	ENC_GZIP,
	ENC_OTHER					/* not asked for: an error once a body comes */
} PsBodyEncoding;

typedef struct Transfer
{
	StringInfoData body;		/* the body, unless it is parsed as it comes */
	int64		received;		/* body bytes received */
	int64		max_bytes;
	bool		too_large;
	long		answered;		/* the status line's code, even when the
								 * body failed (0: none arrived) */
	bool		oom;
	double		retry_after;	/* seconds, < 0 if none */
	char		errbuf[CURL_ERROR_SIZE];
	bool		finished;		/* run_multi saw it end */
	CURLcode	rc;				/* and how */
	double		sent_at;		/* when it was started (ps_now_seconds) */
	uint64		ticket;			/* its place in the rate limit's window */
	double		written_at;		/* libcurl began to write it (0: not yet) */
	double		first_byte_at;	/* the answer began to arrive (0: not yet,
								 * < 0: when is not known) */
	PsConn	   *conn;			/* the connection it is attached to */
	uint64		owner;			/* its mark in the rate limiter (0: none;
								 * see ps_http_new_owner) */
	bool		confirmed;		/* ps_ratelimit_sent was told when */
	bool		resend_held;	/* libcurl's own resend was not let go
								 * (prereq_cb): start it again */

	/*
	 * Reads of pages: a 2xx body is fed to the page scanner chunk by chunk
	 * as it arrives, and never copied; any other body is kept in body for
	 * the error message.  The scanner's memory is its memory context's.
	 */
	CURL	   *handle;
	PsPageScan *scan;			/* NULL: keep the body, scan nothing */
	bool		decided;		/* the status of this response was read */
	bool		streaming;		/* this response is being scanned */

	/* Content-Encoding: gzip: the body as it came, decoded when it ends */
	PsBodyEncoding encoding;
	StringInfoData zbody;		/* data NULL until a compressed body comes */
	char		encoding_name[40];	/* an ENC_OTHER's name, printable */
	bool		bad_encoding;	/* a body came in an encoding not asked for */
} Transfer;

/*
 * The multi handle is driven socket by socket (curl_multi_socket_action):
 * libcurl names the sockets it wants watched (socket_cb), run_multi polls
 * them and hands libcurl only those that are ready, and libcurl's timers
 * (a transfer just added is due at once) run when curl_multi_timeout says
 * they are due.  curl_multi_perform would instead walk every transfer on
 * every wake and poll each one's socket: with four pages in flight whose
 * answers come one at a time, about 13 polls a page.
 */
typedef struct PsMultiState
{
	struct pollfd *watch;		/* the sockets libcurl wants watched */
	int			nwatch;
	int			maxwatch;
	struct pollfd *ready;		/* run_multi's copy of watch, polled */
	int			maxready;
	int			on_wire;		/* transfers attached and not finished */
	double		arrived;		/* when what libcurl is reading now came
								 * (ps_now_seconds): 0 = just now, < 0 = not
								 * known (see run_multi) */
} PsMultiState;

/* where a request stands between its attempts (see attempt_again) */
typedef struct AttemptState
{
	int			attempt;		/* the attempt that just ended, from 0 */
	bool		sent_before;	/* PS_HTTP_CHANGES: an attempt before may
								 * have been applied */
	double		waited_ms;		/* in backoff so far, for max_retry_wait */
} AttemptState;

static void attach_transfer(PsConn *conn, CURL *h, Transfer *tr, uint64 ticket);
static void confirm_sent(PsConn *conn, Transfer *tr);
static bool attempt_again(PsConn *conn, int flags, CURLcode rc, long status,
						  Transfer *tr, AttemptState *st, double *delay_ms);
static void attempt_final(PsConn *conn, const char *method, const char *path, int flags,
						  CURLcode rc, long status, Transfer *tr, AttemptState *st,
						  PsHttpResult *result);
static bool pipe_ready(PsPipeline *p);
static void detach_transfer(PsConn *conn, CURL *h, const Transfer *tr);
static double pipe_pump(PsPipeline *p, bool *backing_off, bool *for_group);
static bool pipe_reads_late(PsPipeline *p, double ms);
static void pipe_confirm(PsPipeline *p);

/* ---------------------------------------------------------------- curl callbacks */

/*
 * Append n bytes to b (the body or the compressed body), growing it in the
 * body's memory context without raising (never longjmp out of libcurl);
 * false when out of memory.
 */
static bool
append_bytes(Transfer *tr, StringInfo b, const char *p, size_t n)
{
	if (b->data == NULL || b->len + n + 1 > (size_t) b->maxlen)
	{
		size_t		newlen;
		char	   *nd;

		if (b->data == NULL)
		{
			newlen = Max(n + 1, 8192);
			nd = MemoryContextAllocExtended(GetMemoryChunkContext(tr->body.data), newlen,
											MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
			b->len = 0;
		}
		else
		{
			newlen = Max((size_t) b->maxlen * 2, b->len + n + 1);
			nd = ps_grow_no_oom(b->data, b->len, newlen);
		}
		if (nd == NULL)
		{
			tr->oom = true;
			return false;
		}
		b->data = nd;
		b->maxlen = newlen;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return true;
}

/*
 * n bytes of the decoded body: scanned as they come (a 2xx of a page read)
 * or kept in tr->body; false when the transfer must end (too large, out of
 * memory).
 */
static bool
deliver(Transfer *tr, const char *ptr, size_t n)
{
	if (tr->received + (int64) n > tr->max_bytes)
	{
		tr->too_large = true;
		return false;
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
		return true;
	}
	return append_bytes(tr, &tr->body, ptr, n);
}

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *tr = (Transfer *) userdata;
	size_t		n = size * nmemb;

	/*
	 * A cancel is taken between two calls into libcurl, but one call may hand
	 * over many bytes: a read pauses here instead, so that the caller's
	 * CHECK_FOR_INTERRUPTS comes at once.  That raises, so nothing resumes
	 * the transfer (at worst, request_timeout would end it).
	 */
	if (tr->scan != NULL && (QueryCancelPending || ProcDiePending))
		return CURL_WRITEFUNC_PAUSE;
	switch (tr->encoding)
	{
		case ENC_IDENTITY:
			return deliver(tr, ptr, n) ? n : 0;
		case ENC_GZIP:
			if (tr->zbody.len + (int64) n > tr->max_bytes)
			{
				tr->too_large = true;
				return 0;
			}
			return append_bytes(tr, &tr->zbody, ptr, n) ? n : 0;
		case ENC_OTHER:
			tr->bad_encoding = true;
			return 0;
	}
	pg_unreachable();
}

/*
 * A Content-Encoding header's value (after the colon): gzip, identity, or
 * another the request did not accept (its name kept, printable, for the
 * error).
 */
static void
read_encoding(Transfer *tr, const char *v, size_t n)
{
	size_t		k = 0;

	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 8 && pg_strncasecmp(v, "identity", 8) == 0))
		tr->encoding = ENC_IDENTITY;
	else if ((n == 4 && pg_strncasecmp(v, "gzip", 4) == 0) ||
			 (n == 6 && pg_strncasecmp(v, "x-gzip", 6) == 0))
		tr->encoding = ENC_GZIP;
	else
	{
		tr->encoding = ENC_OTHER;
		for (; k < n && k < sizeof(tr->encoding_name) - 1; k++)
			tr->encoding_name[k] = (v[k] >= 0x20 && v[k] < 0x7f) ? v[k] : '?';
	}
	tr->encoding_name[k] = '\0';
}

/*
 * A Retry-After header's value (RFC 9110: delay-seconds, or an HTTP date) in
 * seconds, at most RETRY_AFTER_MAX_S: it stops every request of the token,
 * so one that is no such value ("inf", "1e999", "-1") is not taken
 * (-1), and a date past is 0.
 */
static double
read_retry_after(const char *p, size_t n)
{
	char		tmp[64];
	size_t		digits;
	double		v;

	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n' || p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	digits = strspn(tmp, "0123456789");
	if (digits == n)
		v = digits > 9 ? RETRY_AFTER_MAX_S : strtod(tmp, NULL);
	else
	{
		time_t		at = curl_getdate(tmp, NULL);

		if (at == -1)
			return -1;
		v = Max(0.0, difftime(at, time(NULL)));
	}
	return Min(v, (double) RETRY_AFTER_MAX_S);
}

static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *userdata)
{
	Transfer   *tr = (Transfer *) userdata;
	size_t		n = size * nitems;

	/* a new response (after an interim 1xx): its own headers count */
	if (n >= 5 && memcmp(buffer, "HTTP/", 5) == 0)
	{
		tr->encoding = ENC_IDENTITY;
		if (tr->first_byte_at == 0)
			tr->first_byte_at = tr->conn->multi_state->arrived == 0 ? ps_now_seconds()
				: tr->conn->multi_state->arrived;
	}
	else if (n > 17 && pg_strncasecmp(buffer, "Content-Encoding:", 17) == 0)
		read_encoding(tr, buffer + 17, n - 17);
	else if (n > 12 && pg_strncasecmp(buffer, "Retry-After:", 12) == 0)
		tr->retry_after = read_retry_after(buffer + 12, n - 12);
	return n;
}

/*
 * libcurl is about to write the request: the moment the rate limit counts.
 *
 * When a reused keep-alive connection dies before any answer, libcurl
 * writes the same request again on a new connection by itself (only a
 * read: a request that changes something always has a fresh connection,
 * see the top of this file), and calls this again first.  That second
 * request is one more in the server's window, so it passes the rate
 * limiter like any other: it goes now if the limiter lets it (a request
 * and a retry in the statistics), else the transfer is given up here and
 * started again once the limiter lets it (resend_held, pipe_settle and
 * request_loop).  Raises nothing.
 */
static int
prereq_cb(void *userdata, char *conn_primary_ip, char *conn_local_ip,
		  int conn_primary_port, int conn_local_port)
{
	Transfer   *tr = (Transfer *) userdata;

	if (tr->written_at != 0)
	{
		uint64		ticket;

		confirm_sent(tr->conn, tr);
		tr->conn->stats.retries++;
		if (ps_ratelimit_try(tr->conn, &ticket, tr->owner) > 0)
		{
			tr->resend_held = true;
			return CURL_PREREQFUNC_ABORT;
		}
		tr->ticket = ticket;
		tr->confirmed = false;
		tr->first_byte_at = 0;
		tr->conn->stats.requests++;
	}
	tr->written_at = ps_now_seconds();
	return CURL_PREREQFUNC_OK;
}

/*
 * libcurl's CURLOPT_SOCKOPTFUNCTION: the kernel stamps each segment that
 * arrives on a new connection with its time, for arrived_at()
 */
static int
sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
#ifdef SO_TIMESTAMPNS
	int			on = 1;

	if (purpose == CURLSOCKTYPE_IPCXN)
		(void) setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
#endif
	return CURL_SOCKOPT_OK;
}

/*
 * When the oldest bytes not yet read from socket fd arrived
 * (ps_now_seconds), from the kernel's stamp (sockopt_cb), without reading
 * them; -1 if that is not known (no stamp, not a socket, nothing there).
 */
static double
arrived_at(curl_socket_t fd)
{
#ifdef SCM_TIMESTAMPNS
	char		byte;
	struct iovec iov = {&byte, 1};
	union
	{
		char		buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	}			control;
	struct msghdr msg;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	if (recvmsg(fd, &msg, MSG_PEEK | MSG_DONTWAIT) <= 0)
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS)
		{
			struct timespec stamp;
			struct timespec now;
			double		age;

			memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
			clock_gettime(CLOCK_REALTIME, &now);
			age = (now.tv_sec - stamp.tv_sec) + (now.tv_nsec - stamp.tv_nsec) / 1e9;
			/* a stamp from the future: the clock was set back */
			return age >= 0 ? ps_now_seconds() - age : -1;
		}
#endif
	return -1;
}

/* ---------------------------------------------------------------- errors */

static void
report_transport_error(PsConn *conn, const char *method, const char *path,
					   CURLcode rc, Transfer *tr)
{
	int			code;
	const char *msg;
	const char *hint = NULL;

	if (tr->too_large)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Postscript response exceeds max_response_size (%lld bytes)",
						(long long) tr->max_bytes),
				 errhint("Raise the server's max_response_size option if the response is legitimate."),
				 ps_request_errcontext(conn->server_name, method, path)));
	if (tr->oom || rc == CURLE_OUT_OF_MEMORY)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while receiving a Postscript response"),
				 ps_request_errcontext(conn->server_name, method, path)));

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
			hint = tr->bad_encoding ?
				"The request accepts only gzip: the API or a proxy between sent another compression." :
				"Its Content-Encoding header names a compression its body is not in.";
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
			 ps_request_errcontext(conn->server_name, method, path)));
}

/* ---------------------------------------------------------------- one attempt */

/* append a line to a private header list; out of memory, it is freed */
static void
slist_append(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (l == NULL)
	{
		curl_slist_free_all(*list);
		*list = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	}
	*list = l;
}

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
	/* Accept-Encoding is among the shared headers; gzip is decoded here */
	curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
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
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, prereq_cb);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, tr);
	curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, tr->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, tr);
	/*
	 * no transparent resend of a write: see the top of this file; nor a
	 * second one of a read whose resend the rate limit held (prereq_cb),
	 * which libcurl would have sent on a new connection too
	 */
	if ((flags & (PS_HTTP_WRITE | PS_HTTP_CHANGES)) || tr->resend_held)
		curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);

	if (body != NULL)
	{
		/* a private list: the shared one plus Content-Type */
		for (struct curl_slist *l = hdrs; l; l = l->next)
			slist_append(ctype, l->data);
		slist_append(ctype, "Content-Type: application/json");
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
	if (tr->zbody.data != NULL)
		resetStringInfo(&tr->zbody);
	tr->encoding = ENC_IDENTITY;
	tr->bad_encoding = false;
	tr->received = 0;
	tr->too_large = tr->oom = false;
	tr->retry_after = -1;
	tr->errbuf[0] = '\0';
	tr->finished = false;
	tr->rc = CURLE_OK;
	tr->ticket = 0;
	tr->written_at = 0;
	tr->first_byte_at = 0;
	tr->confirmed = false;
	tr->resend_held = false;
	tr->handle = h;
	tr->decided = tr->streaming = false;
	if (tr->scan != NULL)
		ps_scan_reset(tr->scan);
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
	/* a resend held by the rate limit (prereq_cb) counts as a retry only */
	if (rc != CURLE_OK && !tr->resend_held)
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
 * Once libcurl has begun to write tr's request, tell the rate limiter when.
 */
static void
confirm_sent(PsConn *conn, Transfer *tr)
{
	if (tr->confirmed || tr->ticket == 0 || tr->written_at == 0)
		return;
	ps_ratelimit_sent(conn, tr->ticket, tr->written_at);
	tr->confirmed = true;
}

/* gunzip.c's memory: the transfer's context, without raising */
static void *
gunzip_alloc(void *cxt, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) cxt, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
gunzip_free(void *cxt, void *p)
{
	pfree(p);
}

/*
 * tr's gzip body has all come: decode it whole (gunzip.c) and deliver it
 * as if it had come so, a megabyte at a time with a cancel check between.
 * A body that is not gzip ends the transfer as CURLE_BAD_CONTENT_ENCODING.
 */
static void
gunzip_body(Transfer *tr)
{
	char	   *out;
	size_t		len;
	size_t		good;

	Assert(tr->rc == CURLE_OK && tr->zbody.len > 0);
	switch (ps_gunzip((const unsigned char *) tr->zbody.data, tr->zbody.len,
					  (size_t) tr->max_bytes, gunzip_alloc, gunzip_free,
					  GetMemoryChunkContext(tr->body.data), &out, &len, &good))
	{
		case PS_GUNZIP_OK:
			break;
		case PS_GUNZIP_BAD:
			tr->rc = CURLE_BAD_CONTENT_ENCODING;
			if (good == 0)
				snprintf(tr->errbuf, sizeof(tr->errbuf),
						 "The body (%d bytes) is not valid gzip data.", tr->zbody.len);
			else
				snprintf(tr->errbuf, sizeof(tr->errbuf),
						 "The body (%d bytes) is not valid gzip data after its first %zu bytes.",
						 tr->zbody.len, good);
			break;
		case PS_GUNZIP_TOO_LARGE:
			tr->too_large = true;
			tr->rc = CURLE_WRITE_ERROR;
			break;
		case PS_GUNZIP_OOM:
			tr->oom = true;
			tr->rc = CURLE_OUT_OF_MEMORY;
			break;
	}
	resetStringInfo(&tr->zbody);
	if (tr->rc != CURLE_OK)
		return;
	for (size_t off = 0; off < len; off += FEED_CHUNK)
	{
		if (!deliver(tr, out + off, Min((size_t) FEED_CHUNK, len - off)))
		{
			tr->rc = tr->oom ? CURLE_OUT_OF_MEMORY : CURLE_WRITE_ERROR;
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(out);
}

/*
 * tr has ended: with an answer, the rate limiter learns its round trip
 * (request written to first byte back, when the arrival is known) and
 * whether it went on a new connection.
 */
static void
transfer_done(PsConn *conn, Transfer *tr, CURLcode rc)
{
	long		connects = 0;

	tr->rc = rc;
	tr->finished = true;
	conn->multi_state->on_wire--;
	Assert(conn->multi_state->on_wire >= 0);
	confirm_sent(conn, tr);
	if (tr->bad_encoding)
	{
		tr->rc = CURLE_BAD_CONTENT_ENCODING;
		snprintf(tr->errbuf, sizeof(tr->errbuf),
				 "Its Content-Encoding is \"%s\".",
				 tr->encoding_name);
	}
	if (rc != CURLE_OK)
		return;
	if (tr->confirmed && tr->first_byte_at >= tr->written_at)
	{
		curl_easy_getinfo(tr->handle, CURLINFO_NUM_CONNECTS, &connects);
		ps_ratelimit_answered(conn, tr->ticket, tr->first_byte_at - tr->written_at,
							  connects > 0);
	}
	if (tr->encoding == ENC_GZIP && tr->zbody.data != NULL && tr->zbody.len > 0)
		gunzip_body(tr);
}

/* ---------------------------------------------------------------- driving the multi handle */

/*
 * libcurl's CURLMOPT_SOCKETFUNCTION: watch socket s for what (CURL_POLL_*).
 * Called from inside libcurl: allocates without raising, and a -1 return
 * fails the transfers instead.
 */
static int
socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	PsMultiState *ms = (PsMultiState *) userp;
	int			i;

	for (i = 0; i < ms->nwatch; i++)
		if (ms->watch[i].fd == s)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < ms->nwatch)
			ms->watch[i] = ms->watch[--ms->nwatch];
		return 0;
	}
	if (i == ms->nwatch)
	{
		if (ms->nwatch == ms->maxwatch)
		{
			int			n = ms->maxwatch * 2;
			struct pollfd *w = ps_grow_no_oom(ms->watch,
											  sizeof(struct pollfd) * ms->nwatch,
											  sizeof(struct pollfd) * n);

			if (w == NULL)
				return -1;
			ms->watch = w;
			ms->maxwatch = n;
		}
		ms->watch[ms->nwatch++].fd = s;
	}
	ms->watch[i].events = ((what & CURL_POLL_IN) ? POLLIN : 0) |
		((what & CURL_POLL_OUT) ? POLLOUT : 0);
	return 0;
}

/* A multi handle for conn, driven by run_multi, in conn->multi */
void
ps_http_multi_init(PsConn *conn)
{
	PsMultiState *ms = MemoryContextAllocZero(conn->cxt, sizeof(PsMultiState));

	ms->maxwatch = ms->maxready = 8;
	ms->watch = MemoryContextAlloc(conn->cxt, sizeof(struct pollfd) * ms->maxwatch);
	ms->ready = MemoryContextAlloc(conn->cxt, sizeof(struct pollfd) * ms->maxready);
	conn->multi_state = ms;
	conn->multi = curl_multi_init();
	if (conn->multi != NULL &&
		(curl_multi_setopt(conn->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
		 curl_multi_setopt(conn->multi, CURLMOPT_SOCKETDATA, ms) != CURLM_OK))
	{
		curl_multi_cleanup(conn->multi);
		conn->multi = NULL;
	}
}

/* what the multi handle answered: anything but CURLM_OK raises */
static void
multi_check(CURLMcode rc)
{
	if (rc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("libcurl could not drive the Postscript API requests"),
				 errdetail("%s", curl_multi_strerror(rc))));
}

/* hand libcurl one socket that is ready, or (CURL_SOCKET_TIMEOUT) its timers */
static void
multi_action(PsConn *conn, curl_socket_t fd, int ev)
{
	int			running;

	multi_check(curl_multi_socket_action((CURLM *) conn->multi, fd, ev, &running));
}

/*
 * Run libcurl's timers that are due (a transfer just added starts so);
 * returns the milliseconds until the next one, -1 if none.  Interruptible:
 * a timer that stays due cannot hold a cancel.
 */
static long
multi_timers(PsConn *conn)
{
	long		ms;

	for (;;)
	{
		multi_check(curl_multi_timeout((CURLM *) conn->multi, &ms));
		if (ms != 0)
			return ms;
		multi_action(conn, CURL_SOCKET_TIMEOUT, 0);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Wait up to timeout_ms (reported as wait_event) for a socket libcurl
 * watches (none: just sleep) and hand it those that became ready.  A signal
 * ends the wait early.  late: the sockets were not watched for a while
 * (run_multi's groups), so what they hold may have come earlier: its
 * arrival is taken from the kernel's stamp.  Returns how many sockets were
 * ready.
 */
static int
multi_wait(PsConn *conn, int timeout_ms, uint32 wait_event, bool late)
{
	PsMultiState *ms = conn->multi_state;
	int			n = ms->nwatch;
	int			rc;
	int			ready;

	if (n > ms->maxready)
	{
		ms->ready = repalloc(ms->ready, sizeof(struct pollfd) * ms->maxwatch);
		ms->maxready = ms->maxwatch;
	}
	/* a copy: libcurl may change what it watches while it is handed these */
	memcpy(ms->ready, ms->watch, sizeof(struct pollfd) * n);
	PS_WAITING(wait_event, rc = poll(ms->ready, n, timeout_ms));
	if (rc < 0 && errno != EINTR)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not wait for the Postscript API: %m")));
	ready = Max(rc, 0);
	for (int i = 0; rc > 0 && i < n; i++)
	{
		short		re = ms->ready[i].revents;

		if (re == 0)
			continue;
		rc--;
		ms->arrived = late && (re & POLLIN) ? arrived_at(ms->ready[i].fd) : 0;
		multi_action(conn, ms->ready[i].fd,
					 ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
					 ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
					 ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0));
		ms->arrived = 0;
	}
	return ready;
}

/*
 * Drive the multi handle until the transfer await has ended, or (await
 * NULL) until the pipeline's awaited request (or any) is answered;
 * interruptible.  Every transfer that ends meanwhile (pages fetched ahead
 * share the handle) is marked in its own Transfer.  With a pipeline, its
 * queued requests are started on every turn as the rate limit lets them,
 * and its ended transfers retried or held as answered.
 */
static void
run_multi(PsConn *conn, Transfer *await, PsPipeline *pipe)
{
	CURLM	   *m = (CURLM *) conn->multi;

	conn->multi_state->arrived = 0;
	for (;;)
	{
		CURLMsg    *msg;
		int			left;
		double		timeout = POLL_INTERVAL_MS;
		bool		backing_off = false;
		bool		for_group = false;
		bool		late = false;
		long		next;
		double		pump_ms = 0;
		double		group_ms = 0;
		int			ready;

		if (pipe != NULL)
		{
			pump_ms = pipe_pump(pipe, &backing_off, &for_group);
			if (pump_ms > 0)
				timeout = Min(timeout, ceil(pump_ms));
		}
		next = multi_timers(conn);
		if (next >= 0)
			timeout = Min(timeout, (double) next);
		if (await != NULL)
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
			transfer_done(conn, tr, msg->data.result);
		}
		if (await != NULL ? await->finished : pipe_ready(pipe))
			break;

		/*
		 * Pages in groups: while a scan's next requests wait for a group
		 * (pipe_pump), the answers in flight are left unread until then,
		 * read together, and the group started.  A wake after tens of
		 * milliseconds asleep finds the caches cold, and the pages of one
		 * wake share that cost (see "Pages in groups" in docs/design.md).
		 * The rate limiter still learns each answer's round trip, from the
		 * kernel's stamp of its arrival (multi_wait).
		 */
		if (for_group && !backing_off)
		{
			group_ms = next >= 0 ? Min(pump_ms, (double) next) : pump_ms;
			if (pipe_reads_late(pipe, group_ms))
			{
				ps_sleep_ms(group_ms, PS_WAIT_EVENT_RATE_LIMIT);
				late = true;
				timeout = 0;
			}
		}

		/*
		 * nothing on the wire: only the rate limit (or a retry's backoff)
		 * holds the next start
		 */
		ready = multi_wait(conn, (int) timeout,
						   conn->multi_state->on_wire > 0 ? PS_WAIT_EVENT_HTTP :
						   backing_off ? PS_WAIT_EVENT_RETRY :
						   PS_WAIT_EVENT_RATE_LIMIT, late);
		if (late)
			ereport(DEBUG1,
					(errmsg_internal("postscript_fdw: %d connections read together, after %.0f ms waiting for the rate limit to let a group of requests go",
									 ready, group_ms)));
		CHECK_FOR_INTERRUPTS();
	}
}

static CURLcode
perform_once(PsConn *conn, const char *method, const char *path,
			 const char *body, int flags, uint64 ticket, Transfer *tr,
			 long *status)
{
	CURL	   *h = (CURL *) conn->easy;
	char	   *url;
	struct curl_slist *ctype;

	setup_easy(conn, h, method, path, body, flags, tr, &ctype, &url);
	*status = 0;

	attach_transfer(conn, h, tr, ticket);
	conn->busy = true;
	PG_TRY();
	{
		run_multi(conn, tr, NULL);
	}
	PG_FINALLY();
	{
		detach_transfer(conn, h, tr);
		conn->busy = false;
		if (ctype)
			curl_slist_free_all(ctype);
		pfree(url);
	}
	PG_END_TRY();

	tr->answered = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &tr->answered);
	if (tr->rc == CURLE_OK)
		*status = tr->answered;
	count_transfer(conn, tr->rc, *status, tr, method, path);
	return tr->rc;
}

/* ---------------------------------------------------------------- retries */

/* nothing reached the server: safe to retry any method */
static bool
not_sent(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		rc == CURLE_COULDNT_RESOLVE_PROXY;
}

/*
 * An attempt that may succeed when made again: a transport failure that is
 * not the answer's size or memory, a 429, a gateway's 502/503/504.  (A write
 * that may have been applied is the caller's to decide first.)
 */
static bool
retryable(CURLcode rc, long status, const Transfer *tr)
{
	if (rc != CURLE_OK)
		return !tr->too_large && !tr->oom &&
			(not_sent(rc) || rc == CURLE_OPERATION_TIMEDOUT ||
			 rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
			 rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE);
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/*
 * Attempt number attempt (from 0) of a request failed retryably: the
 * milliseconds to wait before the next one (full jitter on an exponential
 * backoff, unless the server said when: retry_after seconds, < 0 if it did
 * not), counted in *waited_ms and the
 * connection's statistics; -1 when max_retries or max_retry_wait allow no
 * more.
 */
static double
backoff_ms(PsConn *conn, double retry_after, int attempt, double *waited_ms)
{
	double		cap = Min((double) BACKOFF_CAP_MS, BACKOFF_BASE_MS * pow(2.0, attempt));
	double		delay_ms;

	if (attempt >= conn->opts->max_retries)
		return -1;
	if (retry_after >= 0)
		delay_ms = retry_after * 1000.0;
	else
		delay_ms = pg_prng_double(&pg_global_prng_state) * cap;
	if (*waited_ms + delay_ms > conn->opts->max_retry_wait_ms)
		return -1;
	*waited_ms += delay_ms;
	conn->stats.retries++;
	conn->stats.backoff_wait_ms += delay_ms;
	return delay_ms;
}

/* the Retry-After of a failed attempt, < 0 if none */
static double
retry_after_of(CURLcode rc, const Transfer *tr)
{
	return rc == CURLE_OK ? tr->retry_after : -1;
}

/*
 * A write whose attempt number attempt (from 0) may have been applied is to
 * be sent again (write_queue.c): the milliseconds to wait first, as a read's
 * retry would; -1 when max_retries or max_retry_wait allow no more.
 */
double
ps_http_backoff_ms(PsConn *conn, int attempt, double *waited_ms)
{
	return backoff_ms(conn, -1, attempt, waited_ms);
}

/* Start tr (on h, set up) on the multi handle: it has its rate-limit ticket */
static void
attach_transfer(PsConn *conn, CURL *h, Transfer *tr, uint64 ticket)
{
	tr->sent_at = ps_now_seconds();
	tr->ticket = ticket;
	tr->conn = conn;
	multi_check(curl_multi_add_handle((CURLM *) conn->multi, h));
	conn->multi_state->on_wire++;
}

/*
 * Take a transfer off the multi handle.  One that did not finish (an error,
 * a cancel, a scan that stopped early) may leave its connection holding an
 * answer half read: that connection is closed, never handed to the next
 * request.
 */
static void
detach_transfer(PsConn *conn, CURL *h, const Transfer *tr)
{
	if (!tr->finished)
	{
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
		conn->multi_state->on_wire--;
		Assert(conn->multi_state->on_wire >= 0);
	}
	curl_multi_remove_handle((CURLM *) conn->multi, h);
}

/* ---------------------------------------------------------------- pages fetched ahead */

/*
 * A pipeline of requests (the next pages of a scan, the writes of a
 * commit): requests are queued in order, each leaves as soon as the rate
 * limiter lets it, and up to the pipeline's size are in flight at once;
 * each 2xx body is scanned into its slot's scanner, made by the caller's
 * new_page, or kept.  Results are taken in the order the requests were
 * queued (ps_pipeline_next: pages), or as they come (ps_pipeline_next_any:
 * writes, each tagged by the caller).  The caller keeps at most size
 * requests queued and not yet taken, so a new request starts as soon as one
 * is taken, never waiting for a whole round.  A request that fails
 * retryably is made again in its slot, after the same backoff as any
 * request, and through the same rate limiter, as soon as its failure is
 * seen (whether or not it is the oldest): the others go on meanwhile.
 *
 * Each slot has its own memory context for its request's path and URL,
 * reset when the slot takes its next request, and one scanner, made by
 * new_page for its first request and emptied for each next one (its memory
 * is reused, not freed and taken again): a page taken stays valid until its
 * slot takes the next request, and a scan's memory never grows with its
 * pages.
 */
typedef struct PipeEntry
{
	CURL	   *handle;			/* this slot's easy handle, reused */
	MemoryContext cxt;			/* path, body, url of its request */
	const char *method;
	char	   *path;
	char	   *body;			/* NULL: none */
	int			flags;			/* PS_HTTP_* */
	char	   *url;
	struct curl_slist *ctype;	/* a body's header list (setup_easy) */
	bool		busy;			/* holds a request not yet taken */
	uint64		seq;			/* its place in the queue */
	int			tag;			/* the caller's */
	bool		started;		/* attached to the multi handle */
	AttemptState ast;			/* its attempts so far */
	double		not_before;		/* a retry backing off: not before then */
	bool		answered;		/* its answer is final (not to be retried):
								 * waiting to be taken */
	PsHttpResult res;			/* then: what it was, for the taker */
	Transfer	tr;
} PipeEntry;

struct PsPipeline
{
	PsConn	   *conn;
	int			size;			/* slots */
	uint64		queued;			/* requests queued so far */
	int			pending;		/* busy slots */
	PipeEntry  *slots;
	int		   *order;			/* pipe_order's: busy slots by seq */
	struct PipeEntry *awaited;	/* run_multi waits for it; NULL: for any */
	PsNewPageFn new_page;		/* a scanner for one page */
	void	   *new_page_arg;
	double		held_since;		/* > 0: the next start waits for the limit */
	uint64		taken;			/* answers taken so far */
	double		group_until;	/* a group's starts go until the limiter
								 * says wait, or until then */
	uint64		owner;			/* its requests' mark in the rate limiter */
	MemoryContextCallback cleanup;
};

/* the rate limiter's marks this backend made (ps_http_new_owner) */
static uint32 owners_made = 0;

/* detach one slot from the multi handle (its memory is its context's) */
static void
pipe_release(PsPipeline *p, PipeEntry *e)
{
	if (e->started)
		detach_transfer(p->conn, e->handle, &e->tr);
	e->started = false;
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
		if (p->slots[i].ctype != NULL)
			curl_slist_free_all(p->slots[i].ctype);
		p->slots[i].ctype = NULL;
	}
	Assert(p->conn->active_pipelines > 0);
	p->conn->active_pipelines--;
}

/* the busy slots in queue order, into p->order; returns how many */
static int
pipe_order(PsPipeline *p)
{
	int			n = 0;

	for (int i = 0; i < p->size; i++)
	{
		int			k = n++;

		if (!p->slots[i].busy)
		{
			n--;
			continue;
		}
		/* insertion: a handful of slots */
		while (k > 0 && p->slots[p->order[k - 1]].seq > p->slots[i].seq)
		{
			p->order[k] = p->order[k - 1];
			k--;
		}
		p->order[k] = i;
	}
	Assert(n == p->pending);
	return n;
}

/*
 * How long a scan's next requests wait to start as a group (see run_multi);
 * 0 when they need not: read_in_groups is off, not a scan (a commit's
 * writes, whose refusals must stop the next starts at once), no group fits
 * the rate limit, or the
 * group would wait longer than GROUP_WAIT_MAX_MS (a window learned wide
 * after 429s, a Retry-After: answers left unread that long could outlast a
 * timeout, or a server's patience).
 */
static double
pipe_group_wait(PsPipeline *p)
{
	double		ms;

	if (!p->conn->opts->read_in_groups || p->new_page == NULL)
		return 0;
	ms = ps_ratelimit_group_wait(p->conn, p->size, p->owner);
	return ms <= GROUP_WAIT_MAX_MS ? ms : 0;
}

/*
 * Start the queued requests (retries first, being older) that the rate
 * limiter lets go now, a scan's in groups (pipe_group_wait: once a group
 * may go, every start the limiter lets go, until it says wait; the requests
 * queued within GROUP_OPEN_MS, as the pages of that wake are taken, belong
 * to it);
 * returns the milliseconds until one may start, 0 if none waits, in
 * *backing_off (if not NULL) whether only a retry's backoff holds the next
 * start, and in *for_group (if not NULL) whether it waits for a group.
 */
static double
pipe_pump(PsPipeline *p, bool *backing_off, bool *for_group)
{
	double		now = ps_now_seconds();
	double		backoff = 0;
	int			n = pipe_order(p);

	if (backing_off)
		*backing_off = false;
	if (for_group)
		*for_group = false;
	for (int i = 0; i < n; i++)
	{
		PipeEntry  *e = &p->slots[p->order[i]];
		uint64		ticket;
		double		wait_ms;

		if (e->started || e->answered)
			continue;
		if (e->not_before > now)
		{
			wait_ms = (e->not_before - now) * 1000.0;
			backoff = backoff > 0 ? Min(backoff, wait_ms) : wait_ms;
			continue;
		}
		wait_ms = now < p->group_until ? 0 : pipe_group_wait(p);
		if (wait_ms > 0 && for_group)
			*for_group = true;
		if (wait_ms <= 0)
		{
			if (now >= p->group_until)
				p->group_until = now + GROUP_OPEN_MS / 1000.0;
			wait_ms = ps_ratelimit_try(p->conn, &ticket, p->owner);
			/* the group is every start the limiter lets go */
			if (wait_ms > 0)
				p->group_until = 0;
		}
		if (wait_ms > 0)
		{
			if (p->held_since == 0)
				p->held_since = ps_now_seconds();
			return backoff > 0 ? Min(backoff, wait_ms) : wait_ms;
		}
		if (p->held_since > 0)
			p->conn->stats.rate_wait_ms += (ps_now_seconds() - p->held_since) * 1000.0;
		p->held_since = 0;
		attach_transfer(p->conn, e->handle, &e->tr, ticket);
		e->started = true;
	}
	if (backing_off)
		*backing_off = backoff > 0;
	return backoff;
}

/*
 * Whether run_multi may leave the answers in flight unread for ms while p
 * waits for a group: its first page was taken (the first rows come as soon
 * as they arrive), some are in flight, every request started was written
 * (nothing is left to send or to connect), and none would pass its
 * request_timeout meanwhile, nor stall for half of low_speed_time: libcurl
 * looks at its timers before it reads what arrived, and would call an
 * answer waiting unread a timeout.
 */
static bool
pipe_reads_late(PsPipeline *p, double ms)
{
	const PsServerOptions *o = p->conn->opts;
	double		until = ps_now_seconds() + (ms + LATE_READ_GUARD_MS) / 1000.0;

	if (p->taken == 0 || p->conn->multi_state->on_wire == 0 ||
		ms > o->low_speed_time_s * 1000.0 / 2)
		return false;
	for (int i = 0; i < p->size; i++)
	{
		PipeEntry  *e = &p->slots[i];

		if (!e->busy || !e->started || e->tr.finished)
			continue;
		if (e->tr.written_at == 0 ||
			e->tr.sent_at + o->request_timeout_ms / 1000.0 < until)
			return false;
	}
	return true;
}

/* tell the rate limiter which of the started requests have left */
static void
pipe_confirm(PsPipeline *p)
{
	for (int i = 0; i < p->size; i++)
		if (p->slots[i].busy && p->slots[i].started)
			confirm_sent(p->conn, &p->slots[i].tr);
}

/* point slot e's handle (detached) at its request again, its scanner emptied */
static void
pipe_setup(PsPipeline *p, PipeEntry *e)
{
	MemoryContext old = MemoryContextSwitchTo(e->cxt);

	Assert(!e->started);
	if (e->ctype != NULL)
		curl_slist_free_all(e->ctype);
	e->ctype = NULL;
	setup_easy(p->conn, e->handle, e->method, e->path, e->body, e->flags, &e->tr,
			   &e->ctype, &e->url);
	MemoryContextSwitchTo(old);
}

/*
 * Every request whose transfer has ended: counted, and made again after
 * its backoff when attempt_again says so (the rate limiter learns of a 429
 * at once, whichever request it answered), else held as answered until it
 * is taken.  Raises nothing.
 */
static void
pipe_settle(PsPipeline *p)
{
	for (int i = 0; i < p->size; i++)
	{
		PipeEntry  *e = &p->slots[i];
		long		status = 0;
		double		delay_ms;

		if (!e->busy || !e->started || !e->tr.finished)
			continue;
		pipe_release(p, e);
		e->tr.answered = 0;
		curl_easy_getinfo(e->handle, CURLINFO_RESPONSE_CODE, &e->tr.answered);
		if (e->tr.rc == CURLE_OK)
			status = e->tr.answered;
		count_transfer(p->conn, e->tr.rc, status, &e->tr, e->method, e->path);
		if (e->tr.resend_held)
		{
			/* libcurl's resend of a read, held by the rate limit: start it */
			pipe_setup(p, e);
			continue;
		}
		if (attempt_again(p->conn, e->flags, e->tr.rc, status, &e->tr, &e->ast, &delay_ms))
		{
			e->ast.attempt++;
			e->not_before = ps_now_seconds() + delay_ms / 1000.0;
			pipe_setup(p, e);
			continue;
		}
		e->answered = true;
		e->res.status = status;
	}
}

/* the oldest answered request, or NULL */
static PipeEntry *
pipe_answered(PsPipeline *p)
{
	int			n = pipe_order(p);

	for (int i = 0; i < n; i++)
		if (p->slots[p->order[i]].answered)
			return &p->slots[p->order[i]];
	return NULL;
}

/* whether run_multi may stop: the awaited request, or any, is answered */
static bool
pipe_ready(PsPipeline *p)
{
	pipe_settle(p);
	return p->awaited != NULL ? p->awaited->answered : pipe_answered(p) != NULL;
}

/*
 * A pipeline of at most size requests on conn, freed with the current
 * memory context: transfers still in flight then are abandoned.  Each
 * slot's scanner is made by new_page(arg), in the current memory context,
 * when the slot takes its first request; without new_page, bodies are kept
 * (PsHttpResult.body) and nothing is scanned.
 */
PsPipeline *
ps_pipeline_create(PsConn *conn, int size, PsNewPageFn new_page, void *arg,
				   uint64 owner)
{
	PsPipeline *p = palloc0(sizeof(PsPipeline));

	Assert(size >= 1);
	p->conn = conn;
	p->size = size;
	p->owner = owner;
	p->slots = palloc0(sizeof(PipeEntry) * size);
	p->order = palloc(sizeof(int) * size);
	p->new_page = new_page;
	p->new_page_arg = arg;
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
		p->slots[i].cxt = AllocSetContextCreate(CurrentMemoryContext,
												"postscript_fdw page ahead",
												ALLOCSET_DEFAULT_SIZES);
		initStringInfo(&p->slots[i].tr.body);
		p->slots[i].tr.zbody.data = NULL;
		p->slots[i].tr.max_bytes = conn->opts->max_response_bytes;
		p->slots[i].tr.owner = owner;
	}
	return p;
}

/*
 * A new mark for the rate limiter's records, unique among backends: the
 * requests of one scan carry one, from its first page (read alone) to the
 * pages its pipeline fetches ahead, so that the limiter can tell a window
 * that holds that scan's requests alone (ps_ratelimit_group_wait).
 */
uint64
ps_http_new_owner(void)
{
	return ((uint64) MyProcPid << 32) | ++owners_made;
}

/* requests queued and not yet taken */
int
ps_pipeline_pending(PsPipeline *p)
{
	return p->pending;
}

/*
 * Queue a request (path and body are copied; flags as ps_http_request's;
 * tag is the caller's, ps_pipeline_next_any's answer), to leave no sooner
 * than delay_ms from now; it starts then if the rate limiter lets it, else
 * while the pipeline is next waited on.  The slot it takes (one whose
 * request was taken) is reset first: a result taken from it earlier is
 * gone.
 */
void
ps_pipeline_send(PsPipeline *p, const char *method, const char *path,
				 const char *body, int flags, double delay_ms, int tag)
{
	PipeEntry  *e = NULL;
	MemoryContext old;

	Assert(ps_pipeline_pending(p) < p->size);
	for (int i = 0; e == NULL && i < p->size; i++)
		if (!p->slots[i].busy)
			e = &p->slots[i];
	Assert(e != NULL && !e->started);
	if (e->ctype != NULL)
		curl_slist_free_all(e->ctype);
	e->ctype = NULL;
	e->path = e->body = e->url = NULL;
	MemoryContextReset(e->cxt);
	if (e->tr.scan == NULL && p->new_page != NULL)
	{
		/* the slot's scanner, in the pipeline's memory (pipe_setup empties it) */
		old = MemoryContextSwitchTo(GetMemoryChunkContext(p));
		e->tr.scan = p->new_page(p->new_page_arg);
		Assert(e->tr.scan != NULL);
		MemoryContextSwitchTo(old);
	}
	e->method = method;
	e->path = MemoryContextStrdup(e->cxt, path);
	e->body = body ? MemoryContextStrdup(e->cxt, body) : NULL;
	e->flags = flags;
	e->tag = tag;
	pipe_setup(p, e);
	e->ast.attempt = 0;
	e->ast.sent_before = (flags & (PS_HTTP_CHANGES | PS_HTTP_WRITE)) != 0 &&
		(flags & PS_HTTP_SENT_BEFORE) != 0;
	e->ast.waited_ms = 0;
	e->not_before = delay_ms > 0 ? ps_now_seconds() + delay_ms / 1000.0 : 0;
	e->answered = false;
	memset(&e->res, 0, sizeof(PsHttpResult));
	e->seq = p->queued++;
	e->busy = true;
	p->pending++;
	(void) pipe_pump(p, NULL, NULL);
	(void) multi_timers(p->conn);
	pipe_confirm(p);
}

/* a GET of path, as ps_pipeline_send */
void
ps_pipeline_add(PsPipeline *p, const char *path)
{
	ps_pipeline_send(p, "GET", path, NULL, 0, 0, 0);
}

/*
 * Take answered request e: its answer into res as ps_http_request() would
 * give it (a page scanned into res->page), or the error it means, raised
 * with the request taken.  Returns its tag.
 */
static int
pipe_take(PsPipeline *p, PipeEntry *e, PsHttpResult *res)
{
	Assert(e->busy && e->answered);
	*res = e->res;
	PG_TRY();
	{
		attempt_final(p->conn, e->method, e->path, e->flags, e->tr.rc, e->res.status,
					  &e->tr, &e->ast, res);
	}
	PG_CATCH();
	{
		e->busy = e->answered = false;
		p->pending--;
		PG_RE_THROW();
	}
	PG_END_TRY();
	e->busy = e->answered = false;
	p->pending--;
	p->taken++;
	if (e->tr.scan != NULL && res->status >= 200 && res->status < 300 && !res->maybe_applied)
	{
		ps_page_finish(e->tr.scan, e->tr.received, p->conn->server_name, e->method, e->path);
		res->page = e->tr.scan;
		res->body = NULL;
		res->len = e->tr.received;
	}
	return e->tag;
}

/*
 * Wait for the oldest request not yet taken (its retries made in the
 * pipeline while the others go on) and return its answer as
 * ps_http_request() would; a page scanned is in res->page (its scanner), a
 * kept body in res->body, valid until the next request is queued.  A
 * failure that flags do not allow raises its error, the request taken.
 */
void
ps_pipeline_next(PsPipeline *p, PsHttpResult *res)
{
	int			n PG_USED_FOR_ASSERTS_ONLY = pipe_order(p);

	Assert(n > 0);
	memset(res, 0, sizeof(PsHttpResult));
	p->awaited = &p->slots[p->order[0]];
	if (!pipe_ready(p))
		run_multi(p->conn, NULL, p);
	(void) pipe_take(p, p->awaited, res);
}

/*
 * Wait for whichever request is answered first (the oldest of those
 * answered together) and return its answer as ps_pipeline_next() does, and
 * its tag in *tag, set before a failure of it is raised (-1 while
 * waiting, when an error is no request's).
 */
void
ps_pipeline_next_any(PsPipeline *p, PsHttpResult *res, int *tag)
{
	PipeEntry  *e;

	Assert(p->pending > 0);
	*tag = -1;
	memset(res, 0, sizeof(PsHttpResult));
	p->awaited = NULL;
	if (!pipe_ready(p))
		run_multi(p->conn, NULL, p);
	e = pipe_answered(p);
	Assert(e != NULL);
	*tag = e->tag;
	(void) pipe_take(p, e, res);
}

/*
 * What became of the request tagged tag, not yet taken, as far as is known
 * without taking it: never written, answered 2xx (applied), refused (a
 * final 4xx or a failure before sending, no attempt before it that may have
 * been applied), or maybe applied.
 */
PsPipeFate
ps_pipeline_fate(PsPipeline *p, int tag)
{
	for (int i = 0; i < p->size; i++)
	{
		PipeEntry  *e = &p->slots[i];

		if (!e->busy || e->tag != tag)
			continue;
		if (e->answered)
		{
			if (e->tr.answered >= 200 && e->tr.answered < 300)
				return PS_FATE_APPLIED;
			if (e->ast.sent_before)
				return PS_FATE_MAYBE;
			if (e->tr.rc == CURLE_OK && e->tr.answered >= 400 && e->tr.answered < 500)
				return PS_FATE_REFUSED;
			return e->tr.rc != CURLE_OK && not_sent(e->tr.rc) ? PS_FATE_NOT_SENT
				: PS_FATE_MAYBE;
		}
		return (e->started && e->tr.written_at > 0) || e->ast.sent_before
			? PS_FATE_MAYBE : PS_FATE_NOT_SENT;
	}
	return PS_FATE_NOT_SENT;
}

/* ---------------------------------------------------------------- the request */

/*
 * Whether an attempt of a write that ended so may have been applied: sent,
 * then its answer lost (cut, timed out, or too large to read), or any 5xx
 * (a 524 from a proxy is the origin's timeout).
 */
static bool
could_apply(CURLcode rc, long status)
{
	return rc != CURLE_OK ? !not_sent(rc) : status >= 500;
}

/*
 * Whether an answer is returned to the caller as it is, whatever came
 * before it: a 2xx, or a 4xx other than 429 that the caller classifies
 * itself (PS_HTTP_ALLOW_4XX: a conflict or an unknown id may prove that an
 * earlier attempt landed).
 */
static bool
final_answer(CURLcode rc, long status, int flags)
{
	return rc == CURLE_OK &&
		((status >= 200 && status < 300) ||
		 ((flags & PS_HTTP_ALLOW_4XX) && status >= 400 && status < 500 && status != 429));
}

/* *result for a write whose outcome is unknown, for the caller to reconcile */
static void
outcome_unknown(CURLcode rc, long status, int attempt, bool sent_before,
				Transfer *tr, PsHttpResult *result)
{
	result->status = rc == CURLE_OK ? status : 0;
	result->maybe_applied = true;
	result->retries = attempt;
	result->sent_before = sent_before;
	if (rc == CURLE_OK)
	{
		result->body = tr->body.data;
		result->len = tr->body.len;
		return;
	}
	result->body = tr->too_large
		? psprintf("its answer exceeds max_response_size (%lld bytes)",
				   (long long) tr->max_bytes)
		: tr->oom ? pstrdup("out of memory while receiving its answer")
		: tr->errbuf[0] ? pstrdup(tr->errbuf)
		: pstrdup(curl_easy_strerror(rc));
	result->len = strlen(result->body);
}

/*
 * Attempt st->attempt of a request ended so (rc, status, tr): whether it is
 * to be made again, after *delay_ms (counted in st).  Not once it may have
 * been applied, for a request that is not idempotent, nor for a 2xx whose
 * body was cut off (it was applied).
 */
static bool
attempt_again(PsConn *conn, int flags, CURLcode rc, long status, Transfer *tr,
			  AttemptState *st, double *delay_ms)
{
	bool		is_write = (flags & PS_HTTP_WRITE) != 0;
	bool		changes = (flags & (PS_HTTP_CHANGES | PS_HTTP_WRITE)) != 0;

	if (changes && rc != CURLE_OK && tr->answered >= 200 && tr->answered < 300)
		return false;
	if (is_write && could_apply(rc, status))
		return false;
	if (!retryable(rc, status, tr) ||
		(*delay_ms = backoff_ms(conn, retry_after_of(rc, tr), st->attempt, &st->waited_ms)) < 0)
		return false;
	st->sent_before |= changes && could_apply(rc, status);
	return true;
}

/*
 * The last attempt of a request ended so (attempt_again said no more): its
 * answer in *result, or the error of a failure that flags do not allow.
 */
static void
attempt_final(PsConn *conn, const char *method, const char *path, int flags,
			  CURLcode rc, long status, Transfer *tr, AttemptState *st,
			  PsHttpResult *result)
{
	bool		is_write = (flags & PS_HTTP_WRITE) != 0;
	bool		changes = (flags & (PS_HTTP_CHANGES | PS_HTTP_WRITE)) != 0;
	int			attempt = st->attempt;
	bool		sent_before = st->sent_before;

	/*
	 * A 2xx whose body was cut off (or is too large): its status says the
	 * write was applied; only the values in its answer are lost
	 */
	if (changes && rc != CURLE_OK && tr->answered >= 200 && tr->answered < 300)
	{
		status = tr->answered;
		ereport(WARNING,
				(errcode(ERRCODE_FDW_REPLY_HANDLE),
				 errmsg("Postscript answered HTTP %ld but its answer could not be read", status),
				 errdetail("%s. The request was applied; the values only Postscript knows (such as an id) are unknown.",
						   tr->too_large ? "The answer exceeds max_response_size"
						   : rc == CURLE_OPERATION_TIMEDOUT ? "The rest of the answer did not arrive within request_timeout"
						   : rc == CURLE_PARTIAL_FILE ? "The connection closed before the whole answer arrived"
						   : curl_easy_strerror(rc)),
				 ps_request_errcontext(conn->server_name, method, path)));
		result->status = status;
		result->body = NULL;
		result->len = 0;
		result->retries = attempt;
		result->sent_before = sent_before;
		return;
	}

	/*
	 * A write is never sent again here once it may have been applied; and
	 * once no attempt is left, a failure after an attempt that may have been
	 * applied (429s until the retries ran out, a refused connection) leaves
	 * the outcome unknown.
	 */
	if ((is_write && could_apply(rc, status)) ||
		(changes &&
		 (could_apply(rc, status) ||
		  (sent_before && !final_answer(rc, status, flags)))))
	{
		outcome_unknown(rc, status, attempt, sent_before, tr, result);
		return;
	}
	if (rc != CURLE_OK)
		report_transport_error(conn, method, path, rc, tr);
	result->status = status;
	result->body = tr->body.data;
	result->len = tr->body.len;
	result->retries = attempt;
	result->sent_before = sent_before;
	if (status >= 200 && status < 300)
		return;
	if (((flags & PS_HTTP_ALLOW_404) &&
		 PS_ANSWER_NO_SUCH_ID(ps_api_classify(status, tr->body.data, tr->body.len))) ||
		((flags & PS_HTTP_ALLOW_4XX) && status >= 400 && status < 500))
		return;
	ps_report_http_status(conn, method, path, status, tr->body.data, tr->body.len,
						  attempt);
}

/* one request, made again as attempt_again says, each time after the rate limit */
static void
request_loop(PsConn *conn, const char *method, const char *path,
			 const char *body, int flags, PsHttpResult *result, Transfer *tr)
{
	AttemptState st;

	st.attempt = 0;
	st.sent_before = (flags & (PS_HTTP_CHANGES | PS_HTTP_WRITE)) != 0 &&
		(flags & PS_HTTP_SENT_BEFORE) != 0;
	st.waited_ms = 0;
	for (;;)
	{
		long		status;
		double		delay_ms;
		uint64		ticket = ps_ratelimit_wait(conn, tr->owner);
		CURLcode	rc = perform_once(conn, method, path, body, flags, ticket, tr, &status);

		/* libcurl's resend of a read, held by the rate limit (prereq_cb) */
		if (tr->resend_held)
			continue;
		if (!attempt_again(conn, flags, rc, status, tr, &st, &delay_ms))
		{
			attempt_final(conn, method, path, flags, rc, status, tr, &st, result);
			return;
		}
		ps_sleep_ms(delay_ms, PS_WAIT_EVENT_RETRY);
		st.attempt++;
	}
}

/* one request, its body scanned into scan (if not NULL) when it is a 2xx */
static void
http_request(PsConn *conn, const char *method, const char *path, const char *body,
			 int flags, PsPageScan *scan, uint64 owner, PsHttpResult *result)
{
	Transfer   *tr = palloc0(sizeof(Transfer));

	initStringInfo(&tr->body);
	tr->max_bytes = conn->opts->max_response_bytes;
	tr->scan = scan;
	tr->owner = owner;
	memset(result, 0, sizeof(PsHttpResult));
	request_loop(conn, method, path, body, flags, result, tr);
	if (scan != NULL && result->status >= 200 && result->status < 300)
	{
		ps_page_finish(scan, tr->received, conn->server_name, method, path);
		result->page = scan;
		result->body = NULL;
		result->len = tr->received;
	}
}

void
ps_http_request(PsConn *conn, const char *method, const char *path,
				const char *body, int flags, PsHttpResult *result)
{
	http_request(conn, method, path, body, flags, NULL, 0, result);
}

void
ps_http_read(PsConn *conn, const char *path, int flags, PsPageScan *scan,
			 uint64 owner, PsHttpResult *result)
{
	Assert(scan != NULL);
	http_request(conn, "GET", path, NULL, flags, scan, owner, result);
}

/* percent-encode everything but unreserved characters (querystring.c) */
char *
ps_url_encode(const char *s)
{
	return ps_qs_encode(s, palloc(3 * strlen(s) + 1));
}
