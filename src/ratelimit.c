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
 * requests in any sliding window of N / rate seconds as the server sees
 * them.  So each request keeps its place in the window for N / rate
 * seconds plus how much later than the quickest request it may have
 * reached the server: PS_RATE_MARGIN_S (the jitter allowed for) until its
 * answer comes, then what its round trip says.  A round trip longer than
 * the shortest of the last ones by x means it took at most x longer on its
 * way (the rest of the difference is the server's and the way back): one
 * that came back as fast as the quickest cannot have arrived late, and the
 * request N later may go N / rate seconds after it, plus a small guard.
 * The margin is spent where jitter really was, not on every window.  (The
 * first request on a new connection, which a server may read late while
 * it sets the connection up, keeps at least the margin, more if its round
 * trip says so: lateness().)
 * On top of that a token bucket of rate_burst tokens spreads the requests
 * of a window, for servers whose own bucket is small.
 *
 * A request is let through only at the moment it is about to be sent, and
 * its time is recorded then: there are no reservations ahead, so a backend
 * that is cancelled while it waits holds nothing.  Once libcurl is about to
 * write the request, its time is moved to that moment (ps_ratelimit_sent),
 * so a backend that was descheduled in between does not compress the
 * window: later requests are spaced from when it really left.
 *
 * When a 429 still comes (more jitter than the margin allows, a server
 * that counts differently, another client on the same token), the limiter
 * adapts: the window widens by PS_RATE_STEP_S, or doubles its learned
 * widening, which lowers the effective rate.  Only a 429 for a request sent
 * after the last widening counts (those in flight then answer 429 together
 * for one cause).  The
 * widening then decays with a time constant of PS_RATE_DECAY_S, back
 * towards rate_limit.  A Retry-After header stops every request for that
 * long.
 *
 * A scan's pipeline may ask when a group of its requests may leave
 * together (ps_ratelimit_group_wait), to start them, and read their
 * answers, in one wake of the backend (http.c, run_multi): only while the
 * window holds that scan's requests alone, each record carrying its
 * owner (the scan's mark, its first page's too), and never sooner than the
 * limiter lets each one go.
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
#define PS_RATE_MARGIN_S	0.040	/* jitter allowed for: the most a request
									 * may reach the server later than another */
#define PS_RATE_GUARD_S		0.015	/* added to what a round trip tells, at
									 * least */
#define PS_RATE_LATE_MAX_S	0.100	/* the most lateness a round trip adds */
#define PS_RATE_RTT_TRUST	16	/* round trips that tell the shortest */
#define PS_RATE_STEP_S		0.03	/* the first learned widening */
#define PS_RATE_MAX_S		60.0	/* the largest learned widening */
#define PS_RATE_DECAY_S		50.0	/* time constant of its decay */
#define PS_RATE_GROUP		3	/* the group size sought (group_size) */
#define POLL_INTERVAL_MS	100

/* one credential's limiter; shared memory or the connection's memory */
struct PsRateState
{
	uint64		key;			/* shared slot: 0 = unused */
	double		last_used;		/* shared slot: for eviction */
	double		rate;			/* rate_limit in force */
	double		widen;			/* learned from 429s: seconds added to the
								 * window */
	double		tokens;			/* burst bucket, refilled at the window's
								 * rate */
	double		last_refill;
	double		last_cut;		/* last time a 429 widened the window */
	double		blocked_until;	/* Retry-After: nothing leaves before */
	uint64		nsent;			/* requests recorded; the next goes to
								 * sent[nsent % PS_RATE_LOG] */
	double		sent[PS_RATE_LOG];	/* send times of the last ones, a ring */
	double		rtt_of[PS_RATE_LOG];	/* and their round trips (< 0: no
										 * answer yet) */
	bool		fresh_of[PS_RATE_LOG];	/* sent on a new connection */
	uint64		owner_of[PS_RATE_LOG];	/* the scan that sent it (0: none) */
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
	s->rate = rate;
	s->widen = 0;
	s->tokens = burst;
	s->last_refill = now;
	s->last_cut = 0;
	s->blocked_until = 0;
	s->nsent = 0;
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
	 * server): the last one in force counts; what was learned and a
	 * Retry-After stay.
	 */
	s->rate = conn->opts->rate_limit;
	Assert(s->rate > 0 && s->widen >= 0);
	return s;
}

static void
release_state(PsConn *conn)
{
	if (uses_shared(conn))
		LWLockRelease(bucket_table->lock);
}

/*
 * The window: at most *n requests in any *span seconds as the server counts
 * them.  n is rate_limit rounded down (at least 1, at most what sent[]
 * holds); the span is n / rate_limit plus what 429s taught.  Each request
 * stays in it that long after it was sent plus its lateness().
 */
static void
window_of(PsRateState *s, int *n, double *span)
{
	double		k = floor(s->rate);

	*n = (int) Max(1.0, Min(k, (double) PS_RATE_LOG));
	*span = *n / s->rate + s->widen;
}

/*
 * The k-th smallest (from 0) of a[0..n-1], which it reorders: Hoare's
 * selection, linear on average.  window_wait() runs at every try, under
 * the shared lock, and needs two order statistics, not an order: sorting
 * the round trips there with qsort() took 12 % of the CPU of a scan at
 * rate_limit 15.
 */
static double
kth_smallest(double *a, int n, int k)
{
	int			lo = 0;
	int			hi = n - 1;

	Assert(k >= 0 && k < n);
	while (lo < hi)
	{
		double		pivot = a[lo + (hi - lo) / 2];
		int			i = lo;
		int			j = hi;

		while (i <= j)
		{
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j)
			{
				double		t = a[i];

				a[i++] = a[j];
				a[j--] = t;
			}
		}
		/* now a[lo..j] <= pivot <= a[i..hi], and pivot fills j+1..i-1 */
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			break;
	}
	return a[k];
}

/*
 * How much later than the quickest request the one of record i may have
 * reached the server, learned from round trips: the margin while it has no
 * answer; then how much longer its round trip was than the quickest of the
 * nrtt recorded sends that have one, plus guard: what the round trips
 * cannot tell apart from the server's own time to answer.  On a connection
 * already in use that can only narrow the margin: a longer round trip
 * there is a server slow to answer (a page to render), not to count.  The
 * first request on a new connection may well have been read late (the
 * server accepting it, starting a worker), and so may any while too few
 * round trips are known to tell the quickest: for those it can only add to
 * the margin, up to PS_RATE_LATE_MAX_S.
 */
static double
lateness(PsRateState *s, int i, double quickest, double guard, int nrtt)
{
	double		measured;

	if (s->rtt_of[i] < 0)
		return PS_RATE_MARGIN_S;
	measured = Max(0.0, s->rtt_of[i] - quickest) + guard;
	if (s->fresh_of[i] || nrtt < PS_RATE_RTT_TRUST)
		return Min(Max(PS_RATE_MARGIN_S, measured), PS_RATE_LATE_MAX_S);
	return Min(measured, PS_RATE_MARGIN_S);
}

/*
 * Seconds until at most n - k of the recorded sends are still in the window
 * (each until its time plus span plus its lateness), so that k more may
 * leave; 0 if that is so now.
 * Those times are not in order in the ring (ps_ratelimit_sent moves one
 * later, latenesses differ): all are looked at.
 */
static double
window_wait(PsRateState *s, int n, double span, double now, int k)
{
	double		in[PS_RATE_LOG];
	int			c = 0;
	int			have = (int) Min(s->nsent, (uint64) PS_RATE_LOG);
	double		rtts[PS_RATE_LOG];
	int			nrtt = 0;
	double		quickest = 0;
	double		longest = 0;
	double		guard = PS_RATE_GUARD_S;

	/* the round trips of the recorded sends, the quickest and the longest */
	for (int i = 0; i < have; i++)
		if (s->rtt_of[i] >= 0)
		{
			double		rtt = s->rtt_of[i];

			if (nrtt == 0 || rtt < quickest)
				quickest = rtt;
			if (nrtt == 0 || rtt > longest)
				longest = rtt;
			rtts[nrtt++] = rtt;
		}

	/*
	 * Most round trips spread wider than jitter alone may spread them (the
	 * margin): the rest is the server's time to answer, which may make one
	 * request look that much less late than it was.  (When even the longest
	 * is within the margin and the guard of the quickest, the 90th
	 * percentile cannot move the guard: the usual case, not looked for.)
	 */
	if (nrtt > 0 && longest - quickest - PS_RATE_MARGIN_S > guard)
		guard = Max(guard, kth_smallest(rtts, nrtt, (nrtt - 1) * 9 / 10) -
					quickest - PS_RATE_MARGIN_S);
	for (int i = 0; i < have; i++)
	{
		double		leaves = s->sent[i] + span + lateness(s, i, quickest, guard, nrtt);

		if (leaves > now)
			in[c++] = leaves;
	}
	if (c <= n - k)
		return 0;
	/* the (c - n + k)-th to leave must be gone */
	return kth_smallest(in, c, c - n + k - 1) - now;
}

/*
 * conn's limiter as acquire_state() gives it, brought up to *now (taken
 * under the lock): what 429s taught fades once a window has passed without
 * one, and the burst bucket refills at the window's rate.  The window is in
 * *n and *span.
 */
static PsRateState *
state_now(PsConn *conn, double *now, int *n, double *span)
{
	PsRateState *s = acquire_state(conn, ps_now_seconds());

	*now = ps_now_seconds();
	window_of(s, n, span);
	if (s->widen > 0 && *now - s->last_cut > *span + PS_RATE_MARGIN_S)
	{
		double		since = *now - Max(s->last_refill,
									   s->last_cut + *span + PS_RATE_MARGIN_S);

		s->widen *= exp(-since / PS_RATE_DECAY_S);
		if (s->widen < 0.001)
			s->widen = 0;
		window_of(s, n, span);
	}
	s->tokens = Min((double) conn->opts->rate_burst,
					s->tokens + (*now - s->last_refill) * *n / *span);
	s->last_refill = *now;
	return s;
}

/*
 * Seconds until k requests may leave together (0: now): a Retry-After has
 * passed, the burst bucket holds k tokens, and the window has room for k.
 */
static double
leave_wait(PsRateState *s, int n, double span, double now, int k)
{
	double		wait_s = 0;

	if (now < s->blocked_until)
		wait_s = s->blocked_until - now;
	if (s->tokens < k)
		wait_s = Max(wait_s, (k - s->tokens) * span / n);
	return Max(wait_s, window_wait(s, n, span, now, k));
}

/*
 * Try to send one request now, for owner (a scan's, or 0).  Returns 0
 * when it may leave (its time is recorded: send it at once; *ticket names
 * the record for ps_ratelimit_sent), otherwise how many milliseconds until
 * it may be tried again.  Takes nothing when it says wait.
 */
double
ps_ratelimit_try(PsConn *conn, uint64 *ticket, uint64 owner)
{
	PsRateState *s;
	double		now;
	double		wait_s;
	int			n;
	double		span;

	*ticket = 0;
	if (conn->opts->rate_limit <= 0)
		return 0;

	s = state_now(conn, &now, &n, &span);
	wait_s = leave_wait(s, n, span, now, 1);
	if (wait_s <= 0)
	{
		s->tokens -= 1.0;
		s->sent[s->nsent % PS_RATE_LOG] = now;
		s->rtt_of[s->nsent % PS_RATE_LOG] = -1;
		s->owner_of[s->nsent % PS_RATE_LOG] = owner;
		*ticket = ++s->nsent;
	}
	release_state(conn);
	return wait_s > 0 ? Max(wait_s * 1000.0, 1.0) : 0;
}

/*
 * Requests that may leave as one group without costing the window any
 * room: a divisor of its n, so that groups fill it exactly (with 4 at a
 * time, only 12 of 15 fit in a window), that the burst bucket holds and
 * that is at most most; the smallest such of at least PS_RATE_GROUP,
 * else the largest (3 at 15/s).  A group waits for the latest of the
 * requests it replaces in the window: groups of five saved more wakes
 * (CPU), but cost a 200-page scan 0.4-0.6 % more time than three
 * (docs/design.md, "Pages in groups").  1: none.
 */
static int
group_size(PsConn *conn, int n, int most)
{
	int			fit = Min(most, Min(n, conn->opts->rate_burst));
	int			k;

	for (k = PS_RATE_GROUP; k <= fit; k++)
		if (n % k == 0)
			return k;
	for (k = Min(fit, PS_RATE_GROUP - 1); k > 1; k--)
		if (n % k == 0)
			return k;
	return 1;
}

/*
 * Whether every request that may still be in the window was owner's: a
 * group keeps the window full only when groups alone fill it.  Requests of
 * other scans, other backends or a commit fill it one at a time, and
 * groups between them would leave it short.
 */
static bool
window_is_owners(PsRateState *s, double span, double now, uint64 owner)
{
	int			have = (int) Min(s->nsent, (uint64) PS_RATE_LOG);

	for (int i = 0; i < have; i++)
		if (s->owner_of[i] != owner && s->sent[i] + span + PS_RATE_LATE_MAX_S > now)
			return false;
	return true;
}

/*
 * Milliseconds until a group of owner's requests (group_size, at most
 * most) may leave together; 0 if they may now, or if no group larger than
 * one request fits, the window holds requests of others
 * (window_is_owners), or the group would wait longer than its last request
 * would have one by one (the window has room for fewer than the group for
 * a while; those go one by one).  Takes nothing: ps_ratelimit_try still
 * lets each one go.
 */
double
ps_ratelimit_group_wait(PsConn *conn, int most, uint64 owner)
{
	PsRateState *s;
	double		now;
	double		wait_s = 0;
	int			n;
	int			k;
	double		span;

	if (conn->opts->rate_limit <= 0)
		return 0;
	s = state_now(conn, &now, &n, &span);
	k = group_size(conn, n, most);
	if (k > 1 && window_is_owners(s, span, now, owner))
	{
		wait_s = leave_wait(s, n, span, now, k);
		if (wait_s > leave_wait(s, n, span, now, 1) +
			(k - 1) * (span + PS_RATE_MARGIN_S) / n)
			wait_s = 0;
	}
	release_state(conn);
	return wait_s * 1000.0;
}

/* the ring index of ticket's record, or -1 when newer sends pushed it out */
static int
record_of(PsRateState *s, uint64 ticket)
{
	if (ticket == 0 || ticket > s->nsent || s->nsent - ticket >= PS_RATE_LOG)
		return -1;
	return (int) ((ticket - 1) % PS_RATE_LOG);
}

/*
 * The request of ticket is being written to the connection at the moment
 * at: its place in the window moves there (never earlier).
 */
void
ps_ratelimit_sent(PsConn *conn, uint64 ticket, double at)
{
	PsRateState *s;
	int			i;

	if (ticket == 0 || conn->opts->rate_limit <= 0)
		return;
	s = acquire_state(conn, ps_now_seconds());
	if ((i = record_of(s, ticket)) >= 0)
		s->sent[i] = Max(s->sent[i], at);
	release_state(conn);
}

/*
 * The request of ticket, sent on a new connection if fresh, was answered
 * rtt seconds after it was written (to the first byte of the answer).
 */
void
ps_ratelimit_answered(PsConn *conn, uint64 ticket, double rtt, bool fresh)
{
	PsRateState *s;
	int			i;

	if (ticket == 0 || conn->opts->rate_limit <= 0 || rtt < 0)
		return;
	s = acquire_state(conn, ps_now_seconds());
	if ((i = record_of(s, ticket)) >= 0)
	{
		s->rtt_of[i] = rtt;
		s->fresh_of[i] = fresh;
	}
	release_state(conn);
}

/*
 * A request sent at sent_at was answered 429: widen the window, unless the
 * request left before the last widening (it says nothing new), and stop
 * everything for retry_after seconds when the server said so (< 0: it did
 * not).
 */
void
ps_ratelimit_throttled(PsConn *conn, double retry_after, double sent_at)
{
	PsRateState *s;
	double		now;

	if (conn->opts->rate_limit <= 0)
		return;
	now = ps_now_seconds();
	s = acquire_state(conn, now);
	if (sent_at > s->last_cut)
	{
		s->widen = Min(PS_RATE_MAX_S, Max(PS_RATE_STEP_S, s->widen * 2));
		s->last_cut = now;
		s->tokens = Min(s->tokens, 1.0);
	}
	if (retry_after >= 0)
		s->blocked_until = Max(s->blocked_until, now + retry_after);
	release_state(conn);
}

/*
 * sleep ms milliseconds, waking every POLL_INTERVAL_MS for interrupts;
 * pg_stat_activity shows wait_event meanwhile
 */
void
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

/*
 * Wait until one request may leave, and take its place in the window;
 * returns the ticket for ps_ratelimit_sent.
 */
uint64
ps_ratelimit_wait(PsConn *conn, uint64 owner)
{
	double		ms;
	uint64		ticket;

	while ((ms = ps_ratelimit_try(conn, &ticket, owner)) > 0)
	{
		double		start = ps_now_seconds();

		ps_sleep_ms(ms, PS_WAIT_EVENT_RATE_LIMIT);
		conn->stats.rate_wait_ms += (ps_now_seconds() - start) * 1000.0;
	}
	return ticket;
}
