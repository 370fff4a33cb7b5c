/*-------------------------------------------------------------------------
 *
 * postscript_fdw.c
 *		Foreign data wrapper for the Postscript SMS-marketing API: the FDW
 *		callbacks that tie planning, scanning and EXPLAIN together.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "catalog/pg_collation.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "postscript_fdw.h"

PS_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* one rate-limit bucket per token for all backends, when preloaded */
	ps_ratelimit_init();
	/* writes sent at commit */
	ps_write_queue_init();
	/* the webhook receiver's settings, and the receiver when preloaded */
	ps_webhook_init();
}

/* planner cost model: a request costs far more than a row */
#define DEFAULT_ROWS			1000
#define REQUEST_COST			1000.0
#define ROW_COST				0.05

/*
 * Indexes into ForeignScan.fdw_private, a List of Nodes (copyObject and
 * plan caching keep it).  ForeignScan.fdw_exprs holds the values: one per
 * parameter, in order, then the id expression of an id lookup.
 */
enum ScanPrivate
{
	SP_PARAMS,					/* per PsParam, a List: String name, Integer
								 * type OID, Integer PsParamKind */
	SP_SORT,					/* String, "" for none */
	SP_ID_MODE,					/* Integer: PsIdMode */
	SP_ATTRS_USED,				/* List of Integer attnums (0: the whole
								 * row, every column); NIL for none */
	SP_LIMIT					/* Integer: rows a LIMIT needs, -1 if none */
};

/* planner state for one foreign relation */
typedef struct PsRelInfo
{
	PsTable    *table;
	PsScanPlan	plan;			/* what the restrictions push down */
	Bitmapset  *attrs_used;
	double		page_size;		/* rows per page, assumed or observed */
	double		fetched;		/* rows the API returns for that plan */
} PsRelInfo;

/* executor state for one foreign scan */
typedef struct PsScanState
{
	PsTable    *table;
	PsConn	   *conn;
	List	   *params;			/* PsParam, with its ExprState */
	char	   *sort;
	PsIdMode	id_mode;
	Expr	   *id_expr;
	ExprState  *id_state;
	Bitmapset  *attrs_used;
	PsRowReader *reader;		/* the columns the scan reads, from a record */

	MemoryContext params_cxt;	/* the query or ids: reset by each rescan */
	MemoryContext page_cxt;		/* one response at a time */
	MemoryContext ahead_cxt;	/* pages fetched ahead, concurrently */
	MemoryContext row_cxt;		/* one row at a time */

	/* where the scan is */
	bool		started;
	bool		done;
	char	   *query;			/* filters and sort, without page */
	List	   *queries;		/* the query, or its parts (ps_deparse_queries) */
	int			next_query;		/* the next of them, once query is done */
	int			page;
	int			total_pages;	/* -1: unknown */
	PsPageScan *records;		/* the current page (or one record) */
	PsRecordCursor cursor;		/* the next record in it */
	int			limit_rows;		/* rows a LIMIT needs, -1: no LIMIT */
	int			first_page_rows;	/* records on page 1 */
	PsPipeline *ahead;			/* pages fetched ahead, in ahead_cxt */
	uint64		owner;			/* the scan's requests' mark in the rate
								 * limiter, page 1 and ahead alike */
	int			ahead_next;		/* the next page to queue there */
	List	   *ids;			/* id lookup: the ids to fetch (String) */
	int			next_id;

	/* for EXPLAIN ANALYZE */
	int64		requests;
	int64		pages;
	int64		rows;
	int64		retries;
} PsScanState;

PG_FUNCTION_INFO_V1(postscript_fdw_handler);

/* ---------------------------------------------------------------- requests */

/*
 * The path of a list request: the endpoint, the query string (filters and
 * sort, one of ps_deparse_queries') and the page ("1", or "1.." for
 * EXPLAIN; NULL for an endpoint without pages).
 */
static char *
list_path(PsTable *t, const char *query, const char *page)
{
	if (page != NULL)
		return psprintf("%s?%s%spage=%s", t->endpoint, query, query[0] ? "&" : "", page);
	if (query[0])
		return psprintf("%s?%s", t->endpoint, query);
	return pstrdup(t->endpoint);
}

/*
 * How long a list request's query string may be: what max_url_length leaves
 * after the base URL, the endpoint and the page (up to INT_MAX).  At or
 * below 0, no split helps.
 */
static int
query_budget(PsTable *t)
{
	return t->sopts->max_url_length - (int) strlen(t->sopts->api_url) -
		(int) strlen(t->endpoint) - (int) strlen("?&page=2147483647");
}

/* the path of an id lookup: GET {endpoint}/{id} */
static char *
id_path(PsTable *t, const char *id)
{
	return psprintf("%s/%s", t->endpoint, ps_url_encode(id));
}

/* ---------------------------------------------------------------- planning */

/* how many ids an id scan fetches, as far as it is known at plan time */
static double
id_count(PsScanPlan *plan)
{
	Expr	   *e = plan->id_expr;

	Assert(plan->id_mode != PS_ID_NONE);
	if (plan->id_mode == PS_ID_ONE)
		return 1;
	if (IsA(e, Const) && !((Const *) e)->constisnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(((Const *) e)->constvalue);

		return Max(1, ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)));
	}
	if (IsA(e, ArrayExpr))
		return Max(1, list_length(((ArrayExpr *) e)->elements));
	return 10;
}

/* plan time: a value that estimate_expression_value folds to a constant */
static PsValueSource
estimated_value(PsParam *param, void *arg, Datum *value, bool *isnull, char **shown)
{
	Node	   *v = estimate_expression_value((PlannerInfo *) arg, (Node *) param->expr);

	if (!IsA(v, Const))
		return PS_VALUE_UNKNOWN;
	*value = ((Const *) v)->constvalue;
	*isnull = ((Const *) v)->constisnull;
	return PS_VALUE_DATUM;
}

/*
 * use_remote_estimate: one request of the scan's first page, with those of
 * the plan's filters whose values are known at plan time (none when plan is
 * NULL).  Returns page_info.total_pages times the rows on that page (the
 * page size the server uses, which is remembered), and in *sent the clauses
 * the request applied.  A query split in parts (a long IN list) is
 * estimated from its first part, times the number of parts.
 */
static double
remote_rows(PlannerInfo *root, RelOptInfo *baserel, PsRelInfo *info,
			PsScanPlan *plan, List **sent)
{
	PsTable    *t = info->table;
	List	   *queries;
	PsConn	   *conn;
	PsHttpResult res;
	PsPageScan *page;
	char	   *path;
	double		n,
				total_pages = 1;

	Assert(t->paginated && t->records_key != NULL);
	*sent = NIL;
	queries = ps_deparse_queries(plan ? plan->params : NIL, estimated_value, root, NULL,
								 query_budget(t), sent);
	if (queries == NIL)
		return 0;				/* a NULL value: no row */
	path = list_path(t, linitial(queries), "1");
	conn = ps_get_connection(t->serverid,
							 OidIsValid(baserel->userid) ? baserel->userid : GetUserId());
	/* the records are counted, none is kept */
	page = ps_page_new(NULL, PS_SCAN_LIST, t->records_key, conn->opts->max_json_depth);
	ps_http_read(conn, path, 0, page, 0, &res);
	ps_page_check_list(page, t, conn->server_name, path);
	n = (double) ps_scan_nrecords(page);
	if (ps_scan_total_pages(page) >= 0)
		total_pages = ps_scan_total_pages(page);
	if (total_pages > 1 && n > 0)
	{
		info->page_size = n;
		n *= total_pages;
	}
	return n * list_length(queries);
}

static void
postscriptGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	PsRelInfo  *info = palloc0(sizeof(PsRelInfo));
	PsTable    *t;
	ListCell   *lc;
	List	   *sent;
	bool		remote;

	info->table = t = ps_get_table(foreigntableid);
	if (!t->res->readable)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_HANDLE),
				 errmsg("foreign table \"%s\" can only be written to", t->relname),
				 errdetail("Postscript's %s endpoint has no read operation.", t->res->name),
				 errhint("Use INSERT INTO %s.", t->relname)));
	baserel->fdw_private = info;

	ps_plan_pushdown(root, baserel, t, baserel->baserestrictinfo, &info->plan);

	/* the columns the query reads: only those are converted */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &info->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &info->attrs_used);

	/* the table's size: one record, an assumption, or the API's count */
	info->page_size = t->sopts->page_size_estimate;
	remote = t->sopts->use_remote_estimate && t->paginated && t->records_key != NULL;
	if (t->records_key == NULL)
		baserel->tuples = 1;
	else if (remote)
		baserel->tuples = remote_rows(root, baserel, info, NULL, &sent);
	else
		baserel->tuples = DEFAULT_ROWS;

	/* the rows the API returns, and those left after the local quals */
	if (info->plan.id_mode != PS_ID_NONE)
	{
		info->fetched = id_count(&info->plan);
		sent = info->plan.pushed;
	}
	else if (remote && info->plan.params != NIL)
		info->fetched = remote_rows(root, baserel, info, &info->plan, &sent);
	else
	{
		info->fetched = baserel->tuples *
			clauselist_selectivity(root, info->plan.pushed, baserel->relid, JOIN_INNER, NULL);
		sent = info->plan.pushed;
	}
	baserel->rows = clamp_row_est(info->fetched *
								  clauselist_selectivity(root,
														 list_difference_ptr(baserel->baserestrictinfo, sent),
														 baserel->relid, JOIN_INNER, NULL));
}

/* requests a scan makes that returns that many rows */
static double
scan_requests(PsRelInfo *info, PsScanPlan *plan, double fetched)
{
	if (plan->id_mode != PS_ID_NONE)
		return id_count(plan);
	if (!info->table->paginated)
		return 1;
	Assert(info->page_size >= 1);	/* page_size_estimate's bound, or observed */
	return Max(1.0, ceil(fetched / info->page_size));
}

/* a request costs far more than a row */
static void
scan_cost(RelOptInfo *baserel, double requests, double fetched, Cost *startup,
		  Cost *total)
{
	*startup = REQUEST_COST + baserel->baserestrictcost.startup;
	*total = *startup + (requests - 1) * REQUEST_COST +
		fetched * (ROW_COST + cpu_tuple_cost + baserel->baserestrictcost.per_tuple);
}

/* generate_implied_equalities_for_column: one EC member of ours at a time */
typedef struct EcMemberArg
{
	Expr	   *current;
	List	   *already_used;
} EcMemberArg;

static bool
ec_member_matches(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				  EquivalenceMember *em, void *arg)
{
	EcMemberArg *state = arg;

	if (state->current != NULL)
		return equal(em->em_expr, state->current);
	if (list_member(state->already_used, em->em_expr))
		return false;
	state->current = em->em_expr;
	return true;
}

/* the parameterization a join clause the API can filter by would need */
static List *
add_join_clause_ppi(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
					RestrictInfo *ri, List *ppis)
{
	Relids		outer;

	if (!join_clause_is_movable_to(ri, baserel) ||
		!ps_join_clause_pushable(root, baserel, t, ri))
		return ppis;
	outer = bms_del_member(bms_union(ri->clause_relids, baserel->lateral_relids),
						   baserel->relid);
	if (bms_is_empty(outer))
		return ppis;
	return list_append_unique_ptr(ppis, get_baserel_parampathinfo(root, baserel, outer));
}

/*
 * The parameterizations worth a path: those whose join clauses (plain
 * ones, and the equalities of equivalence classes such as s.email =
 * o.email) become API filters, so that a nested loop asks the API for the
 * outer row's key instead of reading the whole table.
 */
static List *
join_param_infos(PlannerInfo *root, RelOptInfo *baserel, PsTable *t)
{
	List	   *ppis = NIL;
	ListCell   *lc;

	foreach(lc, baserel->joininfo)
		ppis = add_join_clause_ppi(root, baserel, t, lfirst_node(RestrictInfo, lc), ppis);
	if (baserel->has_eclass_joins)
	{
		EcMemberArg arg = {NULL, NIL};

		for (;;)
		{
			List	   *clauses;

			arg.current = NULL;
			clauses = generate_implied_equalities_for_column(root, baserel,
															 ec_member_matches, &arg,
															 baserel->lateral_referencers);
			if (arg.current == NULL)
				break;
			foreach(lc, clauses)
				ppis = add_join_clause_ppi(root, baserel, t, lfirst_node(RestrictInfo, lc), ppis);
			arg.already_used = lappend(arg.already_used, arg.current);
		}
	}
	return ppis;
}

/*
 * Can the API sort this scan?  Not when its query, sorted, would be split
 * in parts if it were not sorted (ps_deparse_queries), each part sorted on
 * its own: a list that is not a constant may be long when the scan starts
 * (even one whose stable expression gives a short value now: a cached plan
 * outlives it), and a constant one may be.
 */
static bool
sorted_path_ok(PlannerInfo *root, PsRelInfo *info, const char *sort)
{
	ListCell   *lc;

	foreach(lc, info->plan.params)
	{
		PsParam    *p = lfirst(lc);

		if (p->kind == PS_PARAM_ARRAY && !IsA(p->expr, Const))
			return false;
	}
	return list_length(ps_deparse_queries(info->plan.params, estimated_value, root, NULL,
										  query_budget(info->table) - (int) strlen("&sort=") -
										  (int) strlen(sort), NULL)) <= 1;
}

static void
postscriptGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	PsRelInfo  *info = baserel->fdw_private;
	PsTable    *t = info->table;
	Cost		startup,
				total;
	List	   *pathkeys;
	char	   *sort;
	ListCell   *lc;

	scan_cost(baserel, scan_requests(info, &info->plan, info->fetched), info->fetched,
			  &startup, &total);
	add_path(baserel, (Path *)
			 ps_create_foreignscan_path(root, baserel, baserel->rows, startup, total,
										NIL, baserel->lateral_relids, NIL));

	/* the same scan, sorted by the API */
	sort = info->plan.id_mode != PS_ID_NONE ? NULL : ps_plan_sort(root, baserel, t, &pathkeys);
	if (sort != NULL && sorted_path_ok(root, info, sort))
		add_path(baserel, (Path *)
				 ps_create_foreignscan_path(root, baserel, baserel->rows,
											startup, total + 1.0, pathkeys,
											baserel->lateral_relids,
											list_make1(makeString(sort))));

	/* parameterized by the outer side of a join: a request per outer key */
	foreach(lc, join_param_infos(root, baserel, t))
	{
		ParamPathInfo *ppi = lfirst(lc);
		PsScanPlan	plan;
		double		fetched;

		ps_plan_pushdown(root, baserel, t,
						 list_concat_copy(baserel->baserestrictinfo, ppi->ppi_clauses),
						 &plan);
		if (list_length(plan.pushed) <= list_length(info->plan.pushed) &&
			!(plan.id_mode != PS_ID_NONE && info->plan.id_mode == PS_ID_NONE))
			continue;
		fetched = plan.id_mode != PS_ID_NONE ? id_count(&plan)
			: baserel->tuples * clauselist_selectivity(root, plan.pushed, baserel->relid,
													   JOIN_INNER, NULL);
		scan_cost(baserel, scan_requests(info, &plan, fetched), fetched, &startup, &total);
		add_path(baserel, (Path *)
				 ps_create_foreignscan_path(root, baserel, ppi->ppi_rows,
											startup, total, NIL, ppi->ppi_req_outer,
											NIL));
	}
}

static ForeignScan *
postscriptGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
						 ForeignPath *best_path, List *tlist, List *scan_clauses,
						 Plan *outer_plan)
{
	PsRelInfo  *info = baserel->fdw_private;
	PsScanPlan	plan;
	Bitmapset  *attrs_used = bms_copy(info->attrs_used);
	List	   *params = NIL;
	List	   *exprs = NIL;
	List	   *attrs = NIL;
	ListCell   *lc;
	int			limit = -1;
	int			k;
	const char *sort = "";

	/* restrictions, and for a parameterized path its join clauses */
	ps_plan_pushdown(root, baserel, info->table, scan_clauses, &plan);

	/* each parameter as Nodes, its value in fdw_exprs (SP_PARAMS) */
	foreach(lc, plan.params)
	{
		PsParam    *p = lfirst(lc);

		params = lappend(params, list_make3(makeString(p->name),
											makeInteger((int) p->type),
											makeInteger((int) p->kind)));
		exprs = lappend(exprs, p->expr);
	}
	if (plan.id_mode != PS_ID_NONE)
		exprs = lappend(exprs, plan.id_expr);
	Assert(list_length(exprs) == list_length(params) + (plan.id_mode != PS_ID_NONE));
	if (best_path->fdw_private != NIL)
		sort = strVal(linitial(best_path->fdw_private));

	/* every clause is checked locally too: pushed ones are rechecked */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	pull_varattnos((Node *) scan_clauses, baserel->relid, &attrs_used);

	/*
	 * The columns to convert: a whole-row reference (0) needs every one,
	 * count(*) none (its records are counted, nothing in them converted)
	 */
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used))
		attrs = list_make1(makeInteger(0));
	else
	{
		k = -1;
		while ((k = bms_next_member(attrs_used, k)) >= 0)
			attrs = lappend(attrs, makeInteger(k + FirstLowInvalidHeapAttributeNumber));
	}

	/*
	 * A LIMIT over this relation alone bounds how many pages are worth
	 * fetching ahead (local filters may need more: those are read a page at
	 * a time once the bound is reached).
	 */
	if (root->limit_tuples >= 0 && bms_membership(root->all_baserels) == BMS_SINGLETON)
		limit = (int) Min(root->limit_tuples, (double) INT_MAX);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs,
							list_make5(params, makeString(pstrdup(sort)),
									   makeInteger((int) plan.id_mode), attrs,
									   makeInteger(limit)),
							NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------- execution */

/*
 * The parameters of a plan (SP_PARAMS), each with its value's expression
 * from fdw_exprs.
 */
static List *
scan_params(List *private_params, List *exprs)
{
	List	   *params = NIL;
	ListCell   *lc,
			   *le;

	Assert(list_length(exprs) >= list_length(private_params));
	forboth(lc, private_params, le, exprs)
	{
		List	   *fields = lfirst(lc);
		PsParam    *p = palloc0(sizeof(PsParam));

		p->name = strVal(linitial(fields));
		p->type = (Oid) intVal(lsecond(fields));
		p->kind = (PsParamKind) intVal(lthird(fields));
		p->expr = lfirst(le);
		params = lappend(params, p);
	}
	return params;
}

static void
postscriptBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	PsScanState *st = palloc0(sizeof(PsScanState));
	List	   *priv = fsplan->fdw_private;
	List	   *exprs = fsplan->fdw_exprs;
	ListCell   *lc;

	node->fdw_state = st;
	st->table = ps_get_table(RelationGetRelid(node->ss.ss_currentRelation));
	st->params = scan_params(list_nth(priv, SP_PARAMS), exprs);
	st->sort = strVal(list_nth(priv, SP_SORT));
	if (st->sort[0] == '\0')
		st->sort = NULL;
	st->id_mode = (PsIdMode) intVal(list_nth(priv, SP_ID_MODE));
	Assert(list_length(exprs) == list_length(st->params) + (st->id_mode != PS_ID_NONE));
	if (st->id_mode != PS_ID_NONE)
		st->id_expr = llast(exprs);
	st->limit_rows = intVal(list_nth(priv, SP_LIMIT));
	Assert(st->limit_rows >= -1);
	foreach(lc, (List *) list_nth(priv, SP_ATTRS_USED))
		st->attrs_used = bms_add_member(st->attrs_used,
										intVal(lfirst(lc)) - FirstLowInvalidHeapAttributeNumber);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st->conn = ps_get_connection(st->table->serverid, ps_scan_user(fsplan, estate));
	st->reader = ps_row_reader(st->table, st->attrs_used);
	st->owner = ps_http_new_owner();

	foreach(lc, st->params)
	{
		PsParam    *p = lfirst(lc);

		p->state = ExecInitExpr(p->expr, (PlanState *) node);
	}
	if (st->id_mode != PS_ID_NONE)
		st->id_state = ExecInitExpr(st->id_expr, (PlanState *) node);

	st->params_cxt = AllocSetContextCreate(estate->es_query_cxt,
										   "postscript_fdw scan params",
										   ALLOCSET_SMALL_SIZES);
	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	/*
	 * A row's values (texts, an array, a jsonb being encoded) take a few kB:
	 * the first block, kept across resets, holds them without a malloc.
	 */
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw row",
										ALLOCSET_DEFAULT_SIZES);
	st->ahead_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw pages ahead",
										  ALLOCSET_DEFAULT_SIZES);
}

/* run time: the value of the expression, for the current outer row */
static PsValueSource
evaluated_value(PsParam *param, void *arg, Datum *value, bool *isnull, char **shown)
{
	*value = ExecEvalExpr(param->state, (ExprContext *) arg, isnull);
	return PS_VALUE_DATUM;
}

/*
 * Evaluate the pushed-down values and build the query string, or the ids
 * to fetch, in params_cxt, which the next rescan resets.  Returns false
 * when a value rules out every row (a NULL), so no request is made.
 */
static bool
build_query(ForeignScanState *node, PsScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	MemoryContext old = MemoryContextSwitchTo(st->params_cxt);
	bool		ok;

	st->query = NULL;
	st->queries = NIL;
	st->next_query = 0;
	st->ids = NIL;
	st->next_id = 0;
	if (st->id_mode != PS_ID_NONE)
	{
		bool		isnull;
		Datum		v = ExecEvalExpr(st->id_state, econtext, &isnull);

		Assert(st->params == NIL);
		ok = !isnull;
		if (ok)
			st->ids = ps_fetchable_ids(v, st->id_mode);
	}
	else
	{
		st->queries = ps_deparse_queries(st->params, evaluated_value, econtext, st->sort,
										 query_budget(st->table), NULL);
		ok = st->queries != NIL;
		if (ok)
			st->query = linitial(st->queries);
		st->next_query = 1;
	}
	MemoryContextSwitchTo(old);
	return ok;
}

/* the request path for the current page or id */
static char *
request_path(PsScanState *st)
{
	PsTable    *t = st->table;

	if (st->id_mode != PS_ID_NONE)
	{
		Assert(st->next_id < list_length(st->ids));
		return id_path(t, strVal(list_nth(st->ids, st->next_id)));
	}
	Assert(st->query != NULL);
	Assert(!t->paginated || st->page >= 1);
	return list_path(t, st->query, t->paginated ? psprintf("%d", st->page) : NULL);
}

/* a scanner for one response of this scan, in the current memory context */
static PsPageScan *
new_page(PsScanState *st)
{
	bool		one = st->id_mode != PS_ID_NONE || st->table->records_key == NULL;

	return ps_page_new(st->reader, one ? PS_SCAN_RECORD : PS_SCAN_LIST,
					   st->table->records_key, st->conn->opts->max_json_depth);
}

/* new_page for the pipeline: one scanner per slot, reused for its pages */
static PsPageScan *
ahead_page(void *arg)
{
	return new_page((PsScanState *) arg);
}

/*
 * Once page 1 has told how many pages there are, the next pages are fetched
 * ahead, max_concurrency of them queued at a time: each taken page makes
 * room for the next one at once (a sliding pipeline, http.c), each scanned
 * as it arrives into a scanner of its own in ahead_cxt, and pages are
 * handed out in page order.  Not beyond what a LIMIT needs (judged by page
 * 1's size): past that, pages come one at a time.  Sets *res for page
 * st->page, or leaves res->page NULL when that page must be fetched on its
 * own.
 */
static void
page_from_ahead(PsScanState *st, PsHttpResult *res)
{
	int			last = st->total_pages;
	int			page = st->page;

	memset(res, 0, sizeof(PsHttpResult));
	/* one page at a time: each fetched alone, its failures retried at once */
	if (page < 2 || last < 0 || st->conn->opts->max_concurrency < 2)
		return;
	if (st->limit_rows >= 0)
	{
		int			rows_per_page = Max(st->first_page_rows, 1);

		/* the pages that hold limit_rows rows (no overflow near INT_MAX) */
		last = Min(last, st->limit_rows / rows_per_page +
				   (st->limit_rows % rows_per_page != 0));
	}
	if (st->ahead == NULL)
	{
		MemoryContext old;

		if (last - page < 1)
			return;				/* one page left: no need to fetch ahead */
		old = MemoryContextSwitchTo(st->ahead_cxt);
		st->ahead = ps_pipeline_create(st->conn, st->conn->opts->max_concurrency,
									   ahead_page, st, st->owner);
		st->ahead_next = page;
		MemoryContextSwitchTo(old);
	}
	while (st->ahead_next <= last &&
		   ps_pipeline_pending(st->ahead) < st->conn->opts->max_concurrency)
	{
		st->page = st->ahead_next++;
		ps_pipeline_add(st->ahead, request_path(st));
		st->page = page;
		st->requests++;
	}
	if (page < st->ahead_next)
		ps_pipeline_next(st->ahead, res);
}

/*
 * A list scan split in parts (ps_deparse_queries): when a part's pages are
 * done, start the next part from its first page.  Returns false when there
 * is none.
 */
static bool
next_query(PsScanState *st)
{
	Assert(st->done);
	if (st->id_mode != PS_ID_NONE || st->next_query >= list_length(st->queries))
		return false;
	st->query = list_nth(st->queries, st->next_query++);
	st->page = 0;
	st->total_pages = -1;
	st->first_page_rows = 0;
	st->ahead = NULL;			/* its transfers end with ahead_cxt */
	MemoryContextReset(st->ahead_cxt);
	st->done = false;
	return true;
}

/*
 * Fetch the next response into page_cxt (or take it from the pages fetched
 * ahead), scanned as it arrived: its records are handed out from
 * st->cursor.  Returns false at the end of the scan.
 */
static bool
fetch_next(PsScanState *st)
{
	PsTable    *t = st->table;
	PsHttpResult res;
	char	   *path;
	MemoryContext old;

	for (;;)
	{
		uint64		nrecords;

		Assert(st->started);
		if (st->done && !next_query(st))
			return false;
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(st->page_cxt);
		st->records = NULL;
		old = MemoryContextSwitchTo(st->page_cxt);

		if (st->id_mode != PS_ID_NONE)
		{
			if (st->next_id >= list_length(st->ids))
			{
				st->done = true;
				MemoryContextSwitchTo(old);
				return false;
			}
			path = request_path(st);
			st->next_id++;
			ps_http_read(st->conn, path, PS_HTTP_ALLOW_404, new_page(st), st->owner, &res);
			st->requests++;
		}
		else
		{
			/* not done: the last page known is not reached yet */
			Assert(st->total_pages < 0 || st->page < st->total_pages);
			st->page++;
			path = request_path(st);
			page_from_ahead(st, &res);
			if (res.page == NULL)
			{
				ps_http_read(st->conn, path, 0, new_page(st), st->owner, &res);
				st->requests++;
			}
		}
		st->retries += res.retries;

		if (res.status == 404 || res.status == 400)
		{
			/* an unknown id is no row (PS_HTTP_ALLOW_404) */
			MemoryContextSwitchTo(old);
			continue;
		}

		st->records = res.page;
		ps_scan_cursor(st->records, &st->cursor);
		nrecords = ps_scan_nrecords(st->records);
		st->pages++;

		if (st->id_mode != PS_ID_NONE || t->records_key == NULL)
		{
			/* the response is the record */
			if (st->id_mode == PS_ID_NONE)
				st->done = true;
		}
		else
		{
			ps_page_check_list(st->records, t, st->conn->server_name, path);
			if (st->page == 1)
				st->first_page_rows = (int) Min(nrecords, (uint64) PG_INT32_MAX);
			if (!t->paginated || nrecords == 0)
				st->done = true;
			else if (ps_scan_total_pages(st->records) >= 0)
			{
				st->total_pages = ps_scan_total_pages(st->records);
				if (st->page >= st->total_pages)
					st->done = true;
			}
		}
		MemoryContextSwitchTo(old);

		if (st->conn->opts->progress_pages > 0 &&
			st->pages % st->conn->opts->progress_pages == 0)
			ereport(NOTICE,
					(errmsg("postscript_fdw: foreign table \"%s\": %lld pages, %lld rows so far",
							t->relname, (long long) st->pages, (long long) st->rows)));

		if (nrecords > 0)
			return true;
	}
}

static TupleTableSlot *
postscriptIterateForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	PsJsonType type;
	const PsField *fields;
	uint32		nfields;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!st->started)
	{
		st->started = true;
		st->page = 0;
		st->total_pages = -1;
		st->done = !build_query(node, st);
	}
	/* a cancel is seen within a row, however large the page */
	CHECK_FOR_INTERRUPTS();
	while (st->records == NULL ||
		   !ps_scan_next_record(&st->cursor, &type, &fields, &nfields))
	{
		if (!fetch_next(st))
			return slot;
	}

	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	ps_row_values(st->reader, type, fields, nfields, slot->tts_values, slot->tts_isnull);
	MemoryContextSwitchTo(old);
	ExecStoreVirtualTuple(slot);
	st->rows++;
	st->conn->stats.rows++;
	return slot;
}

static void
postscriptReScanForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;

	/* start over: parameters may have changed */
	st->started = false;
	st->done = false;
	st->records = NULL;
	st->ahead = NULL;
	st->query = NULL;
	st->queries = NIL;
	st->ids = NIL;
	MemoryContextReset(st->params_cxt);
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->ahead_cxt);
}

static void
postscriptEndForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;

	if (st && st->params_cxt)
		MemoryContextDelete(st->params_cxt);
	if (st && st->page_cxt)
		MemoryContextDelete(st->page_cxt);
	if (st && st->row_cxt)
		MemoryContextDelete(st->row_cxt);
	if (st && st->ahead_cxt)
		MemoryContextDelete(st->ahead_cxt);
}

/* ---------------------------------------------------------------- EXPLAIN */

/*
 * A pushed value that is not a constant, as EXPLAIN shows it.  When the
 * scan has quals, EXPLAIN has just pointed its deparse context at this node
 * and its ancestors, so a nested loop's parameter shows as the outer column.
 */
static char *
explain_expr(ForeignScanState *node, ExplainState *es, Expr *e)
{
	Plan	   *plan = node->ss.ps.plan;
	List	   *ctx = plan->qual != NIL ? es->deparse_cxt
		: set_deparse_context_plan(es->deparse_cxt, plan, NIL);

	return deparse_expression((Node *) e, ctx, true, false);
}

/* EXPLAIN's arguments for shown_value */
typedef struct ExplainArg
{
	ForeignScanState *node;
	ExplainState *es;
} ExplainArg;

/* EXPLAIN: a constant's value, else the expression that gives it */
static PsValueSource
shown_value(PsParam *param, void *arg, Datum *value, bool *isnull, char **shown)
{
	ExplainArg *a = arg;

	if (!IsA(param->expr, Const))
	{
		*shown = explain_expr(a->node, a->es, param->expr);
		return PS_VALUE_SHOWN;
	}
	*value = ((Const *) param->expr)->constvalue;
	*isnull = ((Const *) param->expr)->constisnull;
	return PS_VALUE_DATUM;
}

/* id lookups: the GET of each id known at plan time */
static char *
explain_id_requests(ForeignScanState *node, ExplainState *es, PsScanState *st)
{
	Expr	   *e = st->id_expr;
	StringInfoData buf;
	ListCell   *lc;

	Assert(st->id_mode != PS_ID_NONE);
	initStringInfo(&buf);
	if (!IsA(e, Const))
	{
		appendStringInfo(&buf, "GET %s/{id} for id %s %s", st->table->endpoint,
						 st->id_mode == PS_ID_ARRAY ? "in" : "=", explain_expr(node, es, e));
		return buf.data;
	}
	if (((Const *) e)->constisnull)
		return "none (the id is NULL)";
	foreach(lc, ps_fetchable_ids(((Const *) e)->constvalue, st->id_mode))
		appendStringInfo(&buf, "%sGET %s", buf.len ? "; " : "",
						 id_path(st->table, strVal(lfirst(lc))));
	return buf.len ? buf.data : "none (no id names an object)";
}

/* the request(s) as EXPLAIN shows them: values where known at plan time */
static char *
explain_request(ForeignScanState *node, ExplainState *es, PsScanState *st)
{
	ExplainArg	arg = {node, es};
	StringInfoData buf;
	List	   *queries;
	ListCell   *lc;

	if (st->id_mode != PS_ID_NONE)
		return explain_id_requests(node, es, st);
	queries = ps_deparse_queries(st->params, shown_value, &arg, st->sort,
								 query_budget(st->table), NULL);
	if (queries == NIL)
		return "none (no row can match: a pushed value is NULL or beyond the API's range)";
	initStringInfo(&buf);
	foreach(lc, queries)
		appendStringInfo(&buf, "%sGET %s", buf.len ? "; " : "",
						 list_path(st->table, lfirst(lc), st->table->paginated ? "1.." : NULL));
	return buf.data;
}

static void
postscriptExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	PsScanState *st = node->fdw_state;

	ExplainPropertyText("Postscript Request", explain_request(node, es, st), es);
	if (es->analyze)
	{
		ExplainPropertyInteger("Requests", NULL, st->requests, es);
		ExplainPropertyInteger("Pages", NULL, st->pages, es);
		ExplainPropertyInteger("Rows Received", NULL, st->rows, es);
		ExplainPropertyInteger("Retries", NULL, st->retries, es);
	}
}

/* ---------------------------------------------------------------- IMPORT */

static List *
postscriptImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return ps_import_foreign_schema(stmt, serverOid);
}

/*
 * Whether a foreign scan of the executor is one of ours that pages through
 * a list (not id lookups): modify.c refuses writes sent as the statement
 * runs beside one.
 */
static bool
pages_list(ForeignScanState *fss)
{
	return fss->fdwroutine != NULL &&
		fss->fdwroutine->BeginForeignScan == postscriptBeginForeignScan &&
		fss->fdw_state != NULL &&
		((PsScanState *) fss->fdw_state)->id_mode == PS_ID_NONE;
}

/* ---------------------------------------------------------------- handler */

Datum
postscript_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *r = makeNode(FdwRoutine);

	r->GetForeignRelSize = postscriptGetForeignRelSize;
	r->GetForeignPaths = postscriptGetForeignPaths;
	r->GetForeignPlan = postscriptGetForeignPlan;
	r->BeginForeignScan = postscriptBeginForeignScan;
	r->IterateForeignScan = postscriptIterateForeignScan;
	r->ReScanForeignScan = postscriptReScanForeignScan;
	r->EndForeignScan = postscriptEndForeignScan;
	r->ExplainForeignScan = postscriptExplainForeignScan;
	r->ImportForeignSchema = postscriptImportForeignSchema;
	ps_modify_routines(r, pages_list);

	PG_RETURN_POINTER(r);
}

