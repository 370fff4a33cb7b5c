/*-------------------------------------------------------------------------
 *
 * ratelimit.c
 *		One rate-limit bucket per API token, shared by every backend.
 *
 * Postscript limits requests per token, not per connection: two sessions
 * that each keep to 15 requests/s together make 30.  When the library is
 * loaded through shared_preload_libraries, a small table in shared memory
 * holds one token bucket per credential (keyed by a 64-bit hash of the API
 * URL, key and shop token; the secrets themselves are never stored), and
 * every request of every backend takes its token there.  Without the
 * preload each connection keeps its own bucket (http.c).
 *
 * A request reserves its token at once, even when the bucket is empty (the
 * bucket goes into debt), and then waits outside the lock for as long as the
 * debt says: callers are served in the order they arrive, and the lock is
 * held for a few instructions only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "postscript_fdw.h"

#define PS_SHARED_BUCKETS	64

typedef struct PsSharedBucket
{
	uint64		key;			/* 0: unused */
	double		tokens;			/* may be negative: reserved ahead */
	double		last_refill;	/* seconds, CLOCK_MONOTONIC */
	double		last_used;
} PsSharedBucket;

typedef struct PsBucketTable
{
	LWLock	   *lock;
	PsSharedBucket buckets[PS_SHARED_BUCKETS];
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

bool
ps_ratelimit_shared(void)
{
	return bucket_table != NULL;
}

/*
 * Take one token of the shared bucket of key (rate tokens/s, at most burst
 * saved up).  Returns how many milliseconds the caller must wait before it
 * sends the request.  A table full of other credentials gives up the one
 * used longest ago.
 */
double
ps_ratelimit_reserve(uint64 key, double rate, int burst)
{
	double		now = ps_now_seconds();
	double		wait_ms;
	PsSharedBucket *b = NULL;
	PsSharedBucket *victim = NULL;

	key |= 1;					/* never 0, the mark of an unused slot */
	LWLockAcquire(bucket_table->lock, LW_EXCLUSIVE);
	for (int i = 0; i < PS_SHARED_BUCKETS; i++)
	{
		PsSharedBucket *s = &bucket_table->buckets[i];

		if (s->key == key)
		{
			b = s;
			break;
		}
		if (victim == NULL || s->last_used < victim->last_used)
			victim = s;
	}
	if (b == NULL)
	{
		b = victim;
		b->key = key;
		b->tokens = burst;
		b->last_refill = now;
	}
	b->tokens = Min((double) burst, b->tokens + (now - b->last_refill) * rate);
	b->last_refill = now;
	b->tokens -= 1.0;
	wait_ms = b->tokens < 0 ? -b->tokens / rate * 1000.0 : 0;
	b->last_used = now;
	LWLockRelease(bucket_table->lock);
	return wait_ms;
}
