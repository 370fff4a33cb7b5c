/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *		The client-side rate limit: when a request may leave.
 *
 * Postscript allows rate_limit requests per second per token and does not
 * say how it counts: a token bucket, fixed one-second windows and a sliding
 * one-second window all fit the sentence, and network jitter compresses or
 * stretches the gaps between requests on the way.  The one rule that keeps
 * a client inside every such shape is the strictest one: never more than N
 * requests in any sliding window of N / rate seconds, widened by a margin
 * for jitter (PS_RATE_MARGIN_S).  On top of it a token bucket of rate_burst
 * tokens spreads the requests of a window, for servers whose own bucket is
 * small.
 *
 * A request is let through only at the moment it is about to be sent, and
 * its time is recorded then: there are no reservations ahead, so a backend
 * that is cancelled while it waits holds nothing, and a late sender only
 * spreads requests out.
 *
 * When a 429 still comes (the server counts differently, another client
 * uses the same token), the limiter adapts: the effective rate drops by a
 * quarter (at most once per window) and then climbs back towards rate_limit
 * by rate_limit / PS_RATE_RECOVER_S per second; a Retry-After header stops
 * every request for that long.
 *
 * Postscript limits requests per token, not per connection.  When the
 * library is loaded through shared_preload_libraries, the state lives in
 * shared memory, one slot per credential (keyed by a 64-bit hash of the API
 * URL, key and shop token; the secrets themselves are never stored), so all
 * backends share one window, one learned rate and one Retry-After.  Without
 * the preload each connection keeps its own state.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "postscript_fdw.h"

#define PS_SHARED_BUCKETS	64
#define PS_RATE_LOG			256 /* send times kept: the largest N of a window */
#define PS_RATE_MARGIN_S	0.045	/* widening of each window, for jitter */
#define PS_RATE_CUT			0.75	/* a 429 multiplies the effective rate */
#define PS_RATE_RECOVER_S	20.0	/* from 0 back to rate_limit, seconds */
#define PS_RATE_FLOOR		0.05	/* the effective rate never drops below
									 * this share of rate_limit */
#define POLL_INTERVAL_MS	100

/* one credential's limiter; shared memory or the connection's memory */
struct PsRateState
{
	uint64		key;			/* shared slot: 0 = unused */
	double		last_used;		/* shared slot: for eviction */
	double		rate;			/* rate_limit it was set up for */
	double		effective;		/* learned rate, <= rate */
	double		tokens;			/* burst bucket, refilled at effective */
	double		last_refill;
	double		last_cut;		/* last time a 429 lowered effective */
	double		blocked_until;	/* Retry-After: nothing leaves before */
	int			head;			/* next slot of sent[] */
	int			count;			/* valid entries of sent[] */
	double		sent[PS_RATE_LOG];	/* send times, a ring, oldest first */
};

typedef struct PsBucketTable
{
	LWLock	   *lock;
	PsRateState buckets[PS_SHARED_BUCKETS];
} PsBucketTable;

static PsBucketTable *bucket_table = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void
ps_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(PsBucketTable)));
	RequestNamedLWLockTranche("postscript_fdw", 1);
}

static void
ps_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	bucket_table = ShmemInitStruct("postscript_fdw rate-limit buckets",
								   sizeof(PsBucketTable), &found);
	if (!found)
	{
		memset(bucket_table, 0, sizeof(PsBucketTable));
		bucket_table->lock = &(GetNamedLWLockTranche("postscript_fdw"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* from _PG_init: ask for the shared table when preloaded */
void
ps_ratelimit_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ps_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ps_shmem_startup;
}

/* a fresh limiter for rate requests/s: the burst bucket full */
static void
state_reset(PsRateState *s, double rate, int burst, double now)
{
	s->rate = s->effective = rate;
	s->tokens = burst;
	s->last_refill = now;
	s->last_cut = 0;
	s->blocked_until = 0;
	s->head = s->count = 0;
}

/* the connection's own limiter, in its memory (from build_conn) */
void
ps_ratelimit_conn_init(PsConn *conn)
{
	conn->rate = MemoryContextAllocZero(conn->cxt, sizeof(PsRateState));
	state_reset(conn->rate, conn->opts->rate_limit, conn->opts->rate_burst,
				ps_now_seconds());
}

static bool
uses_shared(PsConn *conn)
{
	return conn->opts->shared_rate_limit && bucket_table != NULL;
}

/*
 * The limiter of conn's credential, with the shared table's lock held when
 * it is shared; release_state() lets it go.  A table full of other
 * credentials gives up the slot used longest ago.
 */
static PsRateState *
acquire_state(PsConn *conn, double now)
{
	uint64		key = conn->bucket_key | 1; /* never 0, the mark of an unused
											 * slot */
	PsRateState *victim = NULL;
	PsRateState *s;

	if (!uses_shared(conn))
		s = conn->rate;
	else
	{
		s = NULL;
		LWLockAcquire(bucket_table->lock, LW_EXCLUSIVE);
		for (int i = 0; i < PS_SHARED_BUCKETS; i++)
		{
			PsRateState *b = &bucket_table->buckets[i];

			if (b->key == key)
			{
				s = b;
				break;
			}
			if (victim == NULL || b->last_used < victim->last_used)
				victim = b;
		}
		if (s == NULL)
		{
			s = victim;
			s->key = key;
			state_reset(s, conn->opts->rate_limit, conn->opts->rate_burst, now);
		}
		s->last_used = now;
	}
	/*
	 * Another rate_limit for the same credential (a changed option, another
	 * server): the learned rate keeps its share of it, the window and a
	 * Retry-After stay.
	 */
	if (s->rate != conn->opts->rate_limit)
	{
		s->effective = s->rate > 0 ?
			Min(s->effective / s->rate, 1.0) * conn->opts->rate_limit :
			conn->opts->rate_limit;
		s->rate = conn->opts->rate_limit;
	}
	Assert(s->effective > 0 && s->effective <= s->rate);
	Assert(s->count >= 0 && s->count <= PS_RATE_LOG);
	return s;
}

static void
release_state(PsConn *conn)
{
	if (uses_shared(conn))
		LWLockRelease(bucket_table->lock);
}

/*
 * The window the effective rate gives: at most *n requests in any *span
 * seconds.  n is the rate rounded down (at least 1, at most what sent[]
 * holds); the span is n / rate plus the jitter margin.
 */
static void
window_of(double effective, int *n, double *span)
{
	double		k = floor(effective);

	*n = (int) Max(1.0, Min(k, (double) PS_RATE_LOG));
	*span = *n / effective + PS_RATE_MARGIN_S;
}

/*
 * Try to send one request now.  Returns 0 when it may leave (its time is
 * recorded: send it at once), otherwise how many milliseconds until it may
 * be tried again.  Takes nothing when it says wait.
 */
double
ps_ratelimit_try(PsConn *conn)
{
	PsRateState *s;
	double		now;
	double		wait_s = 0;
	int			n;
	double		span;
	int			burst = conn->opts->rate_burst;

	if (conn->opts->rate_limit <= 0)
		return 0;

	now = ps_now_seconds();
	s = acquire_state(conn, now);
	now = ps_now_seconds();		/* under the lock: sent[] stays in order */

	/* recover towards rate_limit once a window has passed since the cut */
	window_of(s->effective, &n, &span);
	if (s->effective < s->rate && now - s->last_cut > span)
		s->effective = Min(s->rate, s->effective +
						   (now - Max(s->last_refill, s->last_cut + span)) *
						   s->rate / PS_RATE_RECOVER_S);
	s->tokens = Min((double) burst, s->tokens + (now - s->last_refill) * s->effective);
	s->last_refill = now;
	window_of(s->effective, &n, &span);

	if (now < s->blocked_until)
		wait_s = s->blocked_until - now;
	if (s->tokens < 1.0)
		wait_s = Max(wait_s, (1.0 - s->tokens) / s->effective);
	if (s->count >= n)
	{
		/* the n-th most recent send must have left the window */
		int			i = (s->head - n + PS_RATE_LOG) % PS_RATE_LOG;

		wait_s = Max(wait_s, s->sent[i] + span - now);
	}
	if (wait_s <= 0)
	{
		s->tokens -= 1.0;
		s->sent[s->head] = now;
		s->head = (s->head + 1) % PS_RATE_LOG;
		s->count = Min(s->count + 1, PS_RATE_LOG);
	}
	release_state(conn);
	return wait_s > 0 ? Max(wait_s * 1000.0, 1.0) : 0;
}

/*
 * A request was answered 429: lower the effective rate (once per window:
 * the requests already in flight answer 429 together for one cause), and
 * stop everything for retry_after seconds when the server said so (< 0:
 * it did not).
 */
void
ps_ratelimit_throttled(PsConn *conn, double retry_after)
{
	PsRateState *s;
	double		now;
	int			n;
	double		span;

	if (conn->opts->rate_limit <= 0)
		return;
	now = ps_now_seconds();
	s = acquire_state(conn, now);
	window_of(s->effective, &n, &span);
	if (now - s->last_cut > span)
	{
		s->effective = Max(s->rate * PS_RATE_FLOOR, s->effective * PS_RATE_CUT);
		s->last_cut = now;
		s->tokens = Min(s->tokens, 1.0);
	}
	if (retry_after >= 0)
		s->blocked_until = Max(s->blocked_until, now + retry_after);
	release_state(conn);
}

/* sleep ms milliseconds, waking every POLL_INTERVAL_MS for interrupts */
void
ps_sleep_ms(double ms)
{
	double		until = ps_now_seconds() + ms / 1000.0;

	for (;;)
	{
		double		left = (until - ps_now_seconds()) * 1000.0;

		CHECK_FOR_INTERRUPTS();
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 (long) Min(left + 1, POLL_INTERVAL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* wait until one request may leave, and take its place in the window */
void
ps_ratelimit_wait(PsConn *conn)
{
	double		ms;

	while ((ms = ps_ratelimit_try(conn)) > 0)
	{
		double		start = ps_now_seconds();

		ps_sleep_ms(ms);
		conn->stats.rate_wait_ms += (ps_now_seconds() - start) * 1000.0;
	}
}
