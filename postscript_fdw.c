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

/* indexes into ForeignScan.fdw_private */
enum ScanPrivate
{
	SP_PARAM_NAMES,				/* List of String */
	SP_PARAM_TYPES,				/* List of Integer (type OIDs) */
	SP_PARAM_ARRAYS,			/* List of Integer: PsParamKind */
	SP_SORT,					/* String, "" for none */
	SP_ID_MODE,					/* Integer: 0 none, 1 one id, 2 id array */
	SP_ATTRS_USED,				/* List of Integer attnums, or NIL for all */
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
	List	   *param_names;
	List	   *param_types;
	List	   *param_arrays;
	List	   *param_states;	/* ExprState per parameter */
	char	   *sort;
	int			id_mode;
	ExprState  *id_state;
	Bitmapset  *attrs_used;
	PsRowReader *reader;		/* the columns the scan reads, from a record */

	MemoryContext page_cxt;		/* one response at a time */
	MemoryContext ahead_cxt;	/* pages fetched ahead, concurrently */
	MemoryContext row_cxt;		/* one row at a time */

	/* where the scan is */
	bool		started;
	bool		done;
	char	   *query;			/* filters and sort, without page */
	int			page;
	int			total_pages;	/* -1: unknown */
	PsPageScan *records;		/* the current page (or one record) */
	PsRecordCursor cursor;		/* the next record in it */
	int			limit_rows;		/* rows a LIMIT needs, -1: no LIMIT */
	int			first_page_rows;	/* records on page 1 */
	PsPipeline *ahead;			/* pages fetched ahead, in ahead_cxt */
	int			ahead_next;		/* the next page to queue there */
	Datum	   *ids;			/* id mode: the ids to fetch */
	int			nids;
	int			next_id;

	/* for EXPLAIN ANALYZE */
	int64		requests;
	int64		pages;
	int64		rows;
	int64		retries;
} PsScanState;

PG_FUNCTION_INFO_V1(postscript_fdw_handler);

/* ---------------------------------------------------------------- planning */

/* how many ids an id scan fetches, as far as it is known at plan time */
static double
id_count(PsScanPlan *plan)
{
	Expr	   *e = plan->id_expr;

	if (!plan->id_is_array)
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

/*
 * use_remote_estimate: one request of the scan's first page, with those of
 * the plan's filters whose values are known at plan time (none when plan is
 * NULL).  Returns page_info.total_pages times the rows on that page (the
 * page size the server uses, which is remembered), and in *sent the clauses
 * the request applied.
 */
static double
remote_rows(PlannerInfo *root, RelOptInfo *baserel, PsRelInfo *info,
			PsScanPlan *plan, List **sent)
{
	PsTable    *t = info->table;
	StringInfoData qs;
	PsConn	   *conn;
	PsHttpResult res;
	PsPageScan *page;
	char	   *path;
	double		n,
				total_pages = 1;
	int			i = 0;

	*sent = NIL;
	initStringInfo(&qs);
	if (plan != NULL)
	{
		ListCell   *ln,
				   *lt,
				   *la,
				   *le;

		forfour(ln, plan->param_names, lt, plan->param_types, la, plan->param_arrays,
				le, plan->param_exprs)
		{
			Node	   *v = estimate_expression_value(root, (Node *) lfirst(le));
			int			len = qs.len;

			i++;
			if (!IsA(v, Const))
				continue;
			if (!ps_append_param(&qs, strVal(lfirst(ln)), ((Const *) v)->constvalue,
								 ((Const *) v)->constisnull, lfirst_oid(lt), lfirst_int(la)))
				return 0;		/* a NULL value: no row */
			if (qs.len > len)
				*sent = lappend(*sent, list_nth(plan->pushed, i - 1));
		}
	}
	path = psprintf("%s?%s%spage=1", t->endpoint, qs.data, qs.len ? "&" : "");
	conn = ps_get_connection(t->serverid,
							 OidIsValid(baserel->userid) ? baserel->userid : GetUserId());
	/* the records are counted, none is kept */
	page = ps_page_new(NULL, PS_SCAN_LIST, t->records_key, conn->opts->max_json_depth);
	ps_http_read(conn, path, 0, page, &res);
	ps_page_check_list(page, t->relname, t->records_key, path);
	n = (double) ps_scan_nrecords(page);
	if (ps_scan_total_pages(page) >= 0)
		total_pages = ps_scan_total_pages(page);
	if (total_pages > 1 && n > 0)
	{
		info->page_size = n;
		return total_pages * n;
	}
	return n;
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
	if (info->plan.id_expr != NULL)
	{
		info->fetched = id_count(&info->plan);
		sent = info->plan.pushed;
	}
	else if (remote && info->plan.param_names != NIL)
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
	if (plan->id_expr != NULL)
		return id_count(plan);
	if (!info->table->paginated)
		return 1;
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
	sort = info->plan.id_expr ? NULL : ps_plan_sort(root, baserel, t, &pathkeys);
	if (sort != NULL)
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
			!(plan.id_expr != NULL && info->plan.id_expr == NULL))
			continue;
		fetched = plan.id_expr ? id_count(&plan)
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
	List	   *names = NIL;
	List	   *types = NIL;
	List	   *kinds = NIL;
	List	   *exprs;
	List	   *attrs = NIL;
	ListCell   *lc,
			   *lt,
			   *la;
	int			id_mode = 0;
	int			limit = -1;
	int			k;
	const char *sort = "";

	/* restrictions, and for a parameterized path its join clauses */
	ps_plan_pushdown(root, baserel, info->table, scan_clauses, &plan);

	foreach(lc, plan.param_names)
		names = lappend(names, makeString(pstrdup(strVal(lfirst(lc)))));
	forboth(lt, plan.param_types, la, plan.param_arrays)
	{
		types = lappend(types, makeInteger((int) lfirst_oid(lt)));
		kinds = lappend(kinds, makeInteger(lfirst_int(la)));
	}
	exprs = list_copy(plan.param_exprs);
	if (plan.id_expr)
	{
		id_mode = plan.id_is_array ? 2 : 1;
		exprs = lappend(exprs, plan.id_expr);
	}
	if (best_path->fdw_private != NIL)
		sort = strVal(linitial(best_path->fdw_private));

	/* every clause is checked locally too: pushed ones are rechecked */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	pull_varattnos((Node *) scan_clauses, baserel->relid, &attrs_used);

	/* whole-row references need every column */
	if (!bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs_used))
	{
		k = -1;
		while ((k = bms_next_member(attrs_used, k)) >= 0)
			attrs = lappend(attrs, makeInteger(k + FirstLowInvalidHeapAttributeNumber));
		if (attrs == NIL)
			attrs = list_make1(makeInteger(0));
	}

	/*
	 * A LIMIT over this relation alone bounds how many pages are worth
	 * fetching ahead (local filters may need more: those are read a page at
	 * a time once the bound is reached).
	 */
	if (root->limit_tuples >= 0 && bms_membership(root->all_baserels) == BMS_SINGLETON)
		limit = (int) Min(root->limit_tuples, (double) INT_MAX);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs,
							lappend(lappend(list_make5(names, types, kinds,
													   makeString(pstrdup(sort)),
													   makeInteger(id_mode)),
											attrs),
									makeInteger(limit)),
							NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------- execution */

static void
postscriptBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	PsScanState *st = palloc0(sizeof(PsScanState));
	List	   *priv = fsplan->fdw_private;
	List	   *exprs = fsplan->fdw_exprs;
	ListCell   *lc;
	int			nparams;

	node->fdw_state = st;
	st->table = ps_get_table(RelationGetRelid(node->ss.ss_currentRelation));
	st->param_names = list_nth(priv, SP_PARAM_NAMES);
	st->param_types = list_nth(priv, SP_PARAM_TYPES);
	st->param_arrays = list_nth(priv, SP_PARAM_ARRAYS);
	st->sort = strVal(list_nth(priv, SP_SORT));
	if (st->sort[0] == '\0')
		st->sort = NULL;
	st->id_mode = intVal(list_nth(priv, SP_ID_MODE));
	st->limit_rows = intVal(list_nth(priv, SP_LIMIT));
	foreach(lc, (List *) list_nth(priv, SP_ATTRS_USED))
		st->attrs_used = bms_add_member(st->attrs_used,
										intVal(lfirst(lc)) - FirstLowInvalidHeapAttributeNumber);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st->conn = ps_get_connection(st->table->serverid, ps_scan_user(fsplan, estate));
	st->reader = ps_row_reader(st->table, st->attrs_used);

	nparams = list_length(st->param_names);
	st->param_states = ExecInitExprList(list_truncate(list_copy(exprs), nparams),
										(PlanState *) node);
	if (st->id_mode)
		st->id_state = ExecInitExpr((Expr *) list_nth(exprs, nparams), (PlanState *) node);

	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw row",
										ALLOCSET_SMALL_SIZES);
	st->ahead_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw pages ahead",
										  ALLOCSET_DEFAULT_SIZES);
}

/*
 * An id that names an object: "", "." and ".." would make {path}/{id} name
 * another endpoint.  No object has such an id, so they are no row.
 */
static bool
fetchable_id(Datum id)
{
	return ps_valid_object_id(TextDatumGetCString(id));
}

/*
 * Evaluate the pushed-down values and build the query string.  Returns
 * false when a value rules out every row (a NULL), so no request is made.
 */
static bool
build_query(ForeignScanState *node, PsScanState *st)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	StringInfoData qs;
	ListCell   *ln,
			   *lt,
			   *la,
			   *ls;
	bool		ok = true;
	MemoryContext old = MemoryContextSwitchTo(econtext->ecxt_per_query_memory);

	initStringInfo(&qs);
	forfour(ln, st->param_names, lt, st->param_types, la, st->param_arrays,
			ls, st->param_states)
	{
		bool		isnull;
		Datum		v = ExecEvalExpr((ExprState *) lfirst(ls), econtext, &isnull);

		if (!ps_append_param(&qs, strVal(lfirst(ln)), v, isnull,
							 (Oid) intVal(lfirst(lt)), intVal(lfirst(la))))
			ok = false;
	}
	if (st->sort)
		appendStringInfo(&qs, "%ssort=%s", qs.len ? "&" : "", st->sort);
	st->query = qs.data;

	st->nids = 0;
	st->next_id = 0;
	if (st->id_mode)
	{
		bool		isnull;
		Datum		v = ExecEvalExpr(st->id_state, econtext, &isnull);

		if (isnull)
			ok = false;
		else if (st->id_mode == 1)
		{
			st->ids = palloc(sizeof(Datum));
			st->ids[0] = v;
			st->nids = fetchable_id(v) ? 1 : 0;
		}
		else
		{
			ArrayType  *arr = DatumGetArrayTypeP(v);
			bool	   *nulls;
			Datum	   *elems;
			int			n,
						k = 0;

			deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
			st->ids = palloc(sizeof(Datum) * Max(n, 1));
			for (int i = 0; i < n; i++)
			{
				bool		dup = false;

				if (nulls[i] || !fetchable_id(elems[i]))
					continue;
				for (int j = 0; j < k && !dup; j++)
					dup = DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID,
																  st->ids[j], elems[i]));
				if (!dup)
					st->ids[k++] = elems[i];
			}
			st->nids = k;
		}
	}
	MemoryContextSwitchTo(old);
	return ok;
}

/* the request path for the current page or id */
static char *
request_path(PsScanState *st)
{
	PsTable    *t = st->table;

	if (st->id_mode)
		return psprintf("%s/%s", t->endpoint,
						ps_url_encode(TextDatumGetCString(st->ids[st->next_id])));
	if (t->paginated)
		return psprintf("%s?%s%spage=%d", t->endpoint, st->query,
						st->query[0] ? "&" : "", st->page);
	if (st->query[0])
		return psprintf("%s?%s", t->endpoint, st->query);
	return pstrdup(t->endpoint);
}

/* a scanner for one response of this scan, in the current memory context */
static PsPageScan *
new_page(PsScanState *st)
{
	bool		one = st->id_mode || st->table->records_key == NULL;

	return ps_page_new(st->reader, one ? PS_SCAN_RECORD : PS_SCAN_LIST,
					   st->table->records_key, st->conn->opts->max_json_depth);
}

/* new_page for the pipeline: it runs in the slot's memory context */
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

		last = Min(last, (st->limit_rows + rows_per_page - 1) / rows_per_page);
	}
	if (st->ahead == NULL)
	{
		MemoryContext old;

		if (last - page < 1)
			return;				/* one page left: no need to fetch ahead */
		old = MemoryContextSwitchTo(st->ahead_cxt);
		st->ahead = ps_pipeline_create(st->conn, st->conn->opts->max_concurrency,
									   ahead_page, st);
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

		if (st->done)
			return false;
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(st->page_cxt);
		st->records = NULL;
		old = MemoryContextSwitchTo(st->page_cxt);

		if (st->id_mode)
		{
			if (st->next_id >= st->nids)
			{
				st->done = true;
				MemoryContextSwitchTo(old);
				return false;
			}
			path = request_path(st);
			st->next_id++;
			ps_http_read(st->conn, path, PS_HTTP_ALLOW_404, new_page(st), &res);
			st->requests++;
		}
		else
		{
			st->page++;
			path = request_path(st);
			page_from_ahead(st, &res);
			if (res.page == NULL)
			{
				ps_http_read(st->conn, path, 0, new_page(st), &res);
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

		if (st->id_mode || t->records_key == NULL)
		{
			/* the response is the record */
			if (!st->id_mode)
				st->done = true;
		}
		else
		{
			ps_page_check_list(st->records, t->relname, t->records_key, path);
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
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->ahead_cxt);
}

static void
postscriptEndForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;

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

/* id lookups: the GET of each id known at plan time */
static char *
explain_id_requests(ForeignScanState *node, ExplainState *es, PsScanState *st, Expr *e)
{
	StringInfoData buf;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *seen = NIL;

	initStringInfo(&buf);
	if (!IsA(e, Const))
	{
		appendStringInfo(&buf, "GET %s/{id} for id %s %s", st->table->endpoint,
						 st->id_mode == 2 ? "in" : "=", explain_expr(node, es, e));
		return buf.data;
	}
	if (((Const *) e)->constisnull)
		return "none (the id is NULL)";
	if (st->id_mode == 1)
	{
		elems = &((Const *) e)->constvalue;
		nulls = &((Const *) e)->constisnull;
		n = 1;
	}
	else
		deconstruct_array(DatumGetArrayTypeP(((Const *) e)->constvalue), TEXTOID, -1,
						  false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *id;

		if (nulls[i] || !fetchable_id(elems[i]))
			continue;
		id = ps_url_encode(TextDatumGetCString(elems[i]));
		if (list_member(seen, makeString(id)))
			continue;
		seen = lappend(seen, makeString(id));
		appendStringInfo(&buf, "%sGET %s/%s", buf.len ? "; " : "", st->table->endpoint, id);
	}
	return buf.len ? buf.data : "none (no id names an object)";
}

/* the request(s) as EXPLAIN shows them: values where known at plan time */
static char *
explain_request(ForeignScanState *node, ExplainState *es, PsScanState *st)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	StringInfoData qs;
	ListCell   *ln,
			   *lt,
			   *la,
			   *le;

	if (st->id_mode)
		return explain_id_requests(node, es, st,
								   list_nth(fsplan->fdw_exprs, list_length(st->param_names)));
	initStringInfo(&qs);
	forfour(ln, st->param_names, lt, st->param_types, la, st->param_arrays,
			le, fsplan->fdw_exprs)
	{
		Expr	   *e = lfirst(le);

		if (!IsA(e, Const))
			appendStringInfo(&qs, "%s%s=%s", qs.len ? "&" : "", strVal(lfirst(ln)),
							 explain_expr(node, es, e));
		else if (!ps_append_param(&qs, strVal(lfirst(ln)), ((Const *) e)->constvalue,
								  ((Const *) e)->constisnull, (Oid) intVal(lfirst(lt)),
								  intVal(lfirst(la))))
			return "none (a pushed value is NULL)";
	}
	if (st->sort)
		appendStringInfo(&qs, "%ssort=%s", qs.len ? "&" : "", st->sort);
	if (st->table->paginated)
		appendStringInfo(&qs, "%spage=1..", qs.len ? "&" : "");
	return psprintf("GET %s%s%s", st->table->endpoint, qs.len ? "?" : "", qs.data);
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
	ps_modify_routines(r);

	PG_RETURN_POINTER(r);
}
