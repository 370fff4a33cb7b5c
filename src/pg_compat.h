/*-------------------------------------------------------------------------
 *
 * pg_compat.h
 *		Every difference between the PostgreSQL major versions the extension
 *		builds against (15, 16, 17, 18), and nowhere else an #if on
 *		PG_VERSION_NUM.  Included by postscript_fdw.h.
 *
 *	15 -> 16	RangeTblEntry's permission fields moved to RTEPermissionInfo:
 *				the planner copies checkAsUser into ForeignScan.checkAsUser, a
 *				result relation's user comes from ExecGetResultRelCheckAsUser,
 *				the columns an INSERT names from getRTEPermissionInfo;
 *				find_nonnullable_vars returns a multibitmapset, not Vars;
 *				repalloc_extended grows a chunk without raising
 *	16 -> 17	create_foreignscan_path takes fdw_restrictinfo; extensions
 *				may name their own wait events (WaitEventExtensionNew)
 *	17 -> 18	create_foreignscan_path takes disabled_nodes; ExplainState
 *				and EXPLAIN's property functions moved to their own headers; a
 *				PathKey's direction is a CompareType; lc_collate_is_c is gone
 *				(a collation's pg_locale_t says); pg_attribute_noreturn() is
 *				gone (pg_noreturn goes in front); the module magic may carry
 *				a name and version
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_COMPAT_H
#define PG_COMPAT_H

#include "miscadmin.h"
#include "access/sysattr.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
#include "optimizer/clauses.h"
#include "optimizer/pathnode.h"
#include "parser/parse_relation.h"
#include "utils/pg_locale.h"
#include "utils/acl.h"
#include "catalog/pg_foreign_server.h"
#include "utils/wait_event.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM < 150000
#error "postscript_fdw needs PostgreSQL 15 or later"
#endif

#if PG_VERSION_NUM >= 160000
#include "nodes/multibitmapset.h"
#endif
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif

/* the postfix form, which 18 removed, for declarations written with it */
#ifndef pg_attribute_noreturn
#if defined(__GNUC__) || defined(__clang__)
#define pg_attribute_noreturn() __attribute__((noreturn))
#else
#define pg_attribute_noreturn()
#endif
#endif

/*
 * PS_MODULE_MAGIC: 18's pg_get_loaded_modules() shows the library's name
 * and version.  Keep the version in step with postscript_fdw.control.
 */
#if PG_VERSION_NUM >= 180000
#define PS_MODULE_MAGIC PG_MODULE_MAGIC_EXT(.name = "postscript_fdw", .version = "1.2")
#else
#define PS_MODULE_MAGIC PG_MODULE_MAGIC
#endif

/*
 * A base relation's foreign scan path.  The extension pushes no join down,
 * so there are no join clauses to recheck (fdw_restrictinfo, 17), and a
 * foreign scan is never disabled by an enable_* setting (disabled_nodes, 18).
 */
#if PG_VERSION_NUM >= 180000
#define ps_create_foreignscan_path(root, rel, rows, startup, total, pathkeys, \
								   required_outer, fdw_private) \
	create_foreignscan_path((root), (rel), NULL, (rows), 0, (startup), (total), \
							(pathkeys), (required_outer), NULL, NIL, (fdw_private))
#elif PG_VERSION_NUM >= 170000
#define ps_create_foreignscan_path(root, rel, rows, startup, total, pathkeys, \
								   required_outer, fdw_private) \
	create_foreignscan_path((root), (rel), NULL, (rows), (startup), (total), \
							(pathkeys), (required_outer), NULL, NIL, (fdw_private))
#else
#define ps_create_foreignscan_path(root, rel, rows, startup, total, pathkeys, \
								   required_outer, fdw_private) \
	create_foreignscan_path((root), (rel), NULL, (rows), (startup), (total), \
							(pathkeys), (required_outer), NULL, (fdw_private))
#endif

/*
 * The role whose user mapping a foreign scan uses: the view owner when the
 * table is read through a view, else the current user.
 */
static inline Oid
ps_scan_user(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/* a wait event set that lives as long as the process (a background worker's) */
static inline WaitEventSet *
ps_create_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(NULL, nevents);
#else
	return CreateWaitEventSet(TopMemoryContext, nevents);
#endif
}

/*
 * Grow the chunk p, of which the first used bytes count, to size bytes in
 * its own memory context, without raising (for code that libcurl calls):
 * NULL when out of memory, p then untouched.  repalloc_extended came in 16.
 */
static inline void *
ps_grow_no_oom(void *p, Size used, Size size)
{
#if PG_VERSION_NUM >= 160000
	Assert(used <= size);
	return repalloc_extended(p, size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
#else
	void	   *n = MemoryContextAllocExtended(GetMemoryChunkContext(p), size,
											   MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);

	Assert(used <= size);
	if (n != NULL)
	{
		memcpy(n, p, used);
		pfree(p);
	}
	return n;
#endif
}

/* USAGE (or another right) on a foreign server: one function for every object since 16 */
static inline AclResult
ps_server_aclcheck(Oid serverid, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(ForeignServerRelationId, serverid, roleid, mode);
#else
	return pg_foreign_server_aclcheck(serverid, roleid, mode);
#endif
}

/* whether roleid owns the foreign server (a superuser owns everything) */
static inline bool
ps_server_ownercheck(Oid serverid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(ForeignServerRelationId, serverid, roleid);
#else
	return pg_foreign_server_ownercheck(serverid, roleid);
#endif
}

/*
 * The same for a result relation of INSERT/UPDATE (a partition that tuple
 * routing opened included: it has no range table entry of its own).
 */
static inline Oid
ps_modify_user(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	Index		rti = rinfo->ri_RangeTableIndex;
	RangeTblEntry *rte;

	if (rti == 0 && rinfo->ri_RootResultRelInfo)
		rti = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
	rte = exec_rt_fetch(rti, estate);
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/* the columns an INSERT into the result relation rte names */
static inline Bitmapset *
ps_inserted_cols(PlannerInfo *root, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	return getRTEPermissionInfo(root->parse->rteperminfos, rte)->insertedCols;
#else
	return rte->insertedCols;
#endif
}

/* whether a sort key sorts descending */
static inline bool
ps_pathkey_desc(PathKey *pk)
{
#if PG_VERSION_NUM >= 180000
	return pk->pk_cmptype == COMPARE_GT;
#else
	return pk->pk_strategy == BTGreaterStrategyNumber;
#endif
}

/* whether a collation sorts by bytes (C, POSIX) */
static inline bool
ps_collation_is_c(Oid collid)
{
#if PG_VERSION_NUM >= 180000
	return pg_newlocale_from_collation(collid)->collate_is_c;
#else
	return lc_collate_is_c(collid);
#endif
}

/* whether the clauses (implicitly ANDed) hold only when varno.attno is not null */
static inline bool
ps_clauses_need_nonnull(List *clauses, Index varno, AttrNumber attno)
{
	List	   *vars = find_nonnullable_vars((Node *) clauses);
#if PG_VERSION_NUM >= 160000
	return mbms_is_member(varno, attno - FirstLowInvalidHeapAttributeNumber, vars);
#else
	ListCell   *lc;

	foreach(lc, vars)
	{
		Var		   *var = lfirst(lc);

		if (var->varno == varno && var->varattno == attno && var->varlevelsup == 0)
			return true;
	}
	return false;
#endif
}

/*
 * Wait events: what pg_stat_activity.wait_event shows while a backend waits
 * on Postscript, or the webhook receiver waits for deliveries.  17 and later
 * name them (wait_event_type "Extension"); 15 and 16 show the generic
 * "Extension" event for all of them.
 */
typedef enum PsWaitEvent
{
	PS_WAIT_HTTP,				/* PostscriptHttp: a request is in flight */
	PS_WAIT_RATE_LIMIT,			/* PostscriptRateLimit: waiting for a token */
	PS_WAIT_RETRY,				/* PostscriptRetryBackoff: before a retry */
	PS_WAIT_WEBHOOK,			/* PostscriptWebhookMain: the webhook
								 * receiver waits for deliveries */
	PS_NUM_WAIT_EVENTS
} PsWaitEvent;

#if PG_VERSION_NUM >= 170000
static inline uint32
ps_wait_event(PsWaitEvent which)
{
	static const char *const names[PS_NUM_WAIT_EVENTS] = {
		"PostscriptHttp", "PostscriptRateLimit", "PostscriptRetryBackoff",
		"PostscriptWebhookMain"
	};
	static uint32 ids[PS_NUM_WAIT_EVENTS];

	Assert(which >= 0 && which < PS_NUM_WAIT_EVENTS);
	/* the same name always gets the same id, in every backend */
	if (ids[which] == 0)
		ids[which] = WaitEventExtensionNew(names[which]);
	return ids[which];
}
#else
#define ps_wait_event(which) ((void) (which), (uint32) PG_WAIT_EXTENSION)
#endif

/* a wait that is not on a latch (libcurl's poll), shown as event */
#define PS_WAITING(event, call) \
	do { \
		pgstat_report_wait_start(event); \
		(call); \
		pgstat_report_wait_end(); \
	} while (0)

#define PS_WAIT_EVENT_HTTP			ps_wait_event(PS_WAIT_HTTP)
#define PS_WAIT_EVENT_RATE_LIMIT	ps_wait_event(PS_WAIT_RATE_LIMIT)
#define PS_WAIT_EVENT_RETRY			ps_wait_event(PS_WAIT_RETRY)
#define PS_WAIT_EVENT_WEBHOOK		ps_wait_event(PS_WAIT_WEBHOOK)

/*
 * Not PostgreSQL's but a library's differences, met with the json-c of the
 * Debian releases that ship 17 and 18.  json-c 0.18's strict mode rejects
 * every string holding a character beyond ASCII (json-c issues 875 and
 * 892), and 0.19's rejects an integer beyond 64 bits as malformed JSON, so
 * that the error no longer names the table, column, row and value (the
 * conversion reports the capped value otherwise).  From 0.18 on the
 * tokener is not strict: it then also accepts NaN, Infinity, comments and
 * trailing commas, and still rejects invalid UTF-8.
 */
#if JSON_C_VERSION_NUM >= ((0 << 16) | (18 << 8))
#define PS_JSON_TOKENER_FLAGS	JSON_TOKENER_VALIDATE_UTF8
#else
#define PS_JSON_TOKENER_FLAGS	(JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8)
#endif

#endif							/* PG_COMPAT_H */
