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
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

#include "postscript_fdw.h"

PG_MODULE_MAGIC;

/* planner cost model: a request costs far more than a row */
#define DEFAULT_ROWS			1000
#define REQUEST_COST			1000.0
#define ROW_COST				0.05

/* indexes into ForeignScan.fdw_private */
enum ScanPrivate
{
	SP_PARAM_NAMES,				/* List of String */
	SP_PARAM_TYPES,				/* List of Integer (type OIDs) */
	SP_PARAM_ARRAYS,			/* List of Integer */
	SP_SORT,					/* String, "" for none */
	SP_ID_MODE,					/* Integer: 0 none, 1 one id, 2 id array */
	SP_ATTRS_USED				/* List of Integer attnums, or NIL for all */
};

/* planner state for one foreign relation */
typedef struct PsRelInfo
{
	PsTable    *table;
	PsScanPlan	plan;
	Bitmapset  *attrs_used;
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

	MemoryContext page_cxt;		/* one response at a time */
	MemoryContext row_cxt;		/* one row at a time */

	/* where the scan is */
	bool		started;
	bool		done;
	char	   *query;			/* filters and sort, without page */
	int			page;
	int			total_pages;	/* -1: unknown */
	PsJson *records;		/* current page's array (or one record) */
	size_t		nrecords;
	size_t		next;
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

static void
postscriptGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	PsRelInfo  *info = palloc0(sizeof(PsRelInfo));
	ListCell   *lc;
	double		rows;

	info->table = ps_get_table(foreigntableid);
	if (!info->table->res->readable)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_HANDLE),
				 errmsg("foreign table \"%s\" can only be written to", info->table->relname),
				 errdetail("Postscript's %s endpoint has no read operation.", info->table->res->name),
				 errhint("Use INSERT INTO %s.", info->table->relname)));
	baserel->fdw_private = info;

	ps_plan_pushdown(root, baserel, info->table, baserel->baserestrictinfo, &info->plan);

	/* the columns the query reads: only those are converted */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &info->attrs_used);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) lfirst_node(RestrictInfo, lc)->clause,
					   baserel->relid, &info->attrs_used);

	if (info->plan.id_expr != NULL)
	{
		rows = 1;
		if (info->plan.id_is_array && IsA(info->plan.id_expr, Const) &&
			!((Const *) info->plan.id_expr)->constisnull)
			rows = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) info->plan.id_expr)->constvalue)),
								  ARR_DIMS(DatumGetArrayTypeP(((Const *) info->plan.id_expr)->constvalue)));
	}
	else if (info->table->records_key == NULL)
		rows = 1;
	else
		rows = DEFAULT_ROWS;
	baserel->tuples = rows;
	baserel->rows = clamp_row_est(rows * clauselist_selectivity(root, baserel->baserestrictinfo,
																0, JOIN_INNER, NULL));
}

/* requests a scan of that many rows makes */
static double
estimate_requests(PsRelInfo *info, double rows)
{
	if (info->plan.id_expr != NULL || !info->table->paginated)
		return Max(rows, 1);
	return Max(1.0, ceil(rows / info->table->sopts->page_size_estimate));
}

static void
postscriptGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	PsRelInfo  *info = baserel->fdw_private;
	double		fetched = info->plan.param_names || info->plan.id_expr
		? baserel->rows : baserel->tuples;
	double		requests = estimate_requests(info, fetched);
	Cost		startup = REQUEST_COST;
	Cost		total = requests * REQUEST_COST + fetched * ROW_COST +
		fetched * cpu_tuple_cost;
	List	   *pathkeys;
	char	   *sort;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, NIL, NULL, NULL, NIL));

	/* the same scan, sorted by the API */
	sort = ps_plan_sort(root, baserel, info->table, &pathkeys);
	if (sort != NULL)
		add_path(baserel, (Path *)
				 create_foreignscan_path(root, baserel, NULL, baserel->rows,
										 startup, total + 1.0, pathkeys, NULL, NULL,
										 list_make1(makeString(sort))));
}

static ForeignScan *
postscriptGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
						 ForeignPath *best_path, List *tlist, List *scan_clauses,
						 Plan *outer_plan)
{
	PsRelInfo  *info = baserel->fdw_private;
	List	   *names = NIL;
	List	   *types = NIL;
	List	   *arrays = NIL;
	List	   *exprs = NIL;
	List	   *attrs = NIL;
	ListCell   *lc,
			   *lt,
			   *la;
	int			id_mode = 0;
	int			k;
	const char *sort = "";

	foreach(lc, info->plan.param_names)
		names = lappend(names, makeString(pstrdup(strVal(lfirst(lc)))));
	forboth(lt, info->plan.param_types, la, info->plan.param_arrays)
	{
		types = lappend(types, makeInteger((int) lfirst_oid(lt)));
		arrays = lappend(arrays, makeInteger(lfirst_int(la)));
	}
	exprs = list_copy(info->plan.param_exprs);
	if (info->plan.id_expr)
	{
		id_mode = info->plan.id_is_array ? 2 : 1;
		exprs = lappend(exprs, info->plan.id_expr);
	}
	if (best_path->fdw_private != NIL)
		sort = strVal(linitial(best_path->fdw_private));

	/* whole-row references need every column */
	if (!bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, info->attrs_used))
	{
		k = -1;
		while ((k = bms_next_member(info->attrs_used, k)) >= 0)
			attrs = lappend(attrs, makeInteger(k + FirstLowInvalidHeapAttributeNumber));
		if (attrs == NIL)
			attrs = list_make1(makeInteger(0));
	}

	/* every clause is checked locally too: pushed ones are rechecked */
	scan_clauses = extract_actual_clauses(scan_clauses, false);

	return make_foreignscan(tlist, scan_clauses, baserel->relid, exprs,
							lappend(list_make5(names, types, arrays,
											   makeString(pstrdup(sort)),
											   makeInteger(id_mode)),
									attrs),
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
	Oid			userid;

	node->fdw_state = st;
	st->table = ps_get_table(RelationGetRelid(node->ss.ss_currentRelation));
	st->param_names = list_nth(priv, SP_PARAM_NAMES);
	st->param_types = list_nth(priv, SP_PARAM_TYPES);
	st->param_arrays = list_nth(priv, SP_PARAM_ARRAYS);
	st->sort = strVal(list_nth(priv, SP_SORT));
	if (st->sort[0] == '\0')
		st->sort = NULL;
	st->id_mode = intVal(list_nth(priv, SP_ID_MODE));
	foreach(lc, (List *) list_nth(priv, SP_ATTRS_USED))
		st->attrs_used = bms_add_member(st->attrs_used,
										intVal(lfirst(lc)) - FirstLowInvalidHeapAttributeNumber);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	{
		RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
	st->conn = ps_get_connection(st->table->serverid, userid);

	nparams = list_length(st->param_names);
	st->param_states = ExecInitExprList(list_truncate(list_copy(exprs), nparams),
										(PlanState *) node);
	if (st->id_mode)
		st->id_state = ExecInitExpr((Expr *) list_nth(exprs, nparams), (PlanState *) node);

	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt, "postscript_fdw row",
										ALLOCSET_SMALL_SIZES);
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
							 (Oid) intVal(lfirst(lt)), intVal(lfirst(la)) != 0))
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
			st->nids = 1;
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

				if (nulls[i])
					continue;
				for (int j = 0; j < k && !dup; j++)
					dup = DatumGetBool(DirectFunctionCall2(texteq, st->ids[j], elems[i]));
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

static void
no_records_error(PsScanState *st, const char *path, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("Postscript response for foreign table \"%s\" %s",
					st->table->relname, why),
			 errhint("Check the table's endpoint and records_key options."),
			 errcontext("postscript_fdw request GET %s", path)));
}

/*
 * Fetch the next response into page_cxt.  Returns false at the end of the
 * scan.
 */
static bool
fetch_next(PsScanState *st)
{
	PsTable    *t = st->table;
	PsHttpResult res;
	PsJson *root;
	char	   *path;
	MemoryContext old;

	for (;;)
	{
		if (st->done)
			return false;
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(st->page_cxt);
		st->records = NULL;
		st->nrecords = st->next = 0;
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
			ps_http_request(st->conn, "GET", path, NULL, PS_HTTP_ALLOW_404, &res);
		}
		else
		{
			st->page++;
			path = request_path(st);
			ps_http_request(st->conn, "GET", path, NULL, 0, &res);
		}
		st->requests++;
		st->retries += res.retries;

		if (res.status == 404)
		{
			/* an unknown id is no row */
			MemoryContextSwitchTo(old);
			continue;
		}

		root = ps_parse_json(res.body, res.len, st->conn->opts->max_json_depth, "GET", path);
		st->pages++;

		if (st->id_mode || t->records_key == NULL)
		{
			/* the response is the record */
			st->records = root;
			st->nrecords = 1;
			if (!st->id_mode)
				st->done = true;
		}
		else
		{
			PsJson *recs;
			PsJson *pi,
					   *tp;

			if (!json_object_is_type(root, json_type_object) ||
				!json_object_object_get_ex(root, t->records_key, &recs))
				no_records_error(st, path,
								 psprintf("has no \"%s\" key", t->records_key));
			if (!json_object_is_type(recs, json_type_array))
				no_records_error(st, path,
								 psprintf("has a \"%s\" that is not an array", t->records_key));
			st->records = recs;
			st->nrecords = json_object_array_length(recs);

			if (!t->paginated || st->nrecords == 0)
				st->done = true;
			else if (json_object_object_get_ex(root, "page_info", &pi) &&
					 json_object_is_type(pi, json_type_object) &&
					 json_object_object_get_ex(pi, "total_pages", &tp) &&
					 json_object_is_type(tp, json_type_int))
			{
				st->total_pages = json_object_get_int(tp);
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

		if (st->nrecords > 0)
			return true;
	}
}

static TupleTableSlot *
postscriptIterateForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	PsJson *rec;
	MemoryContext old;

	ExecClearTuple(slot);
	if (!st->started)
	{
		st->started = true;
		st->page = 0;
		st->total_pages = -1;
		st->done = !build_query(node, st);
	}
	if (st->next >= st->nrecords && !fetch_next(st))
		return slot;

	rec = (st->id_mode || st->table->records_key == NULL)
		? st->records
		: json_object_array_get_idx(st->records, st->next);
	st->next++;

	MemoryContextReset(st->row_cxt);
	old = MemoryContextSwitchTo(st->row_cxt);
	ps_record_to_values(st->table, rec, slot->tts_values, slot->tts_isnull, st->attrs_used);
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
	st->nrecords = st->next = 0;
	MemoryContextReset(st->page_cxt);
}

static void
postscriptEndForeignScan(ForeignScanState *node)
{
	PsScanState *st = node->fdw_state;

	if (st && st->page_cxt)
		MemoryContextDelete(st->page_cxt);
	if (st && st->row_cxt)
		MemoryContextDelete(st->row_cxt);
}

/* ---------------------------------------------------------------- EXPLAIN */

/* the request as EXPLAIN shows it: values where known at plan time */
static char *
explain_request(ForeignScanState *node, PsScanState *st)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	StringInfoData buf;
	ListCell   *ln,
			   *lt,
			   *la,
			   *le;
	List	   *ctx = NIL;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfo(&buf, "GET %s", st->table->endpoint);
	if (st->id_mode)
	{
		Expr	   *e = list_nth(fsplan->fdw_exprs, list_length(st->param_names));

		ctx = set_deparse_context_plan(NIL, (Plan *) fsplan, NIL);
		appendStringInfo(&buf, "/{id} for id %s %s", st->id_mode == 2 ? "in" : "=",
						 deparse_expression((Node *) e, ctx, false, false));
		return buf.data;
	}
	forfour(ln, st->param_names, lt, st->param_types, la, st->param_arrays,
			le, fsplan->fdw_exprs)
	{
		Expr	   *e = lfirst(le);

		appendStringInfoChar(&buf, first ? '?' : '&');
		first = false;
		if (IsA(e, Const) && !((Const *) e)->constisnull)
		{
			StringInfoData one;

			initStringInfo(&one);
			ps_append_param(&one, strVal(lfirst(ln)), ((Const *) e)->constvalue, false,
							(Oid) intVal(lfirst(lt)), intVal(lfirst(la)) != 0);
			appendStringInfoString(&buf, one.data);
		}
		else
		{
			if (ctx == NIL)
				ctx = set_deparse_context_plan(NIL, (Plan *) fsplan, NIL);
			appendStringInfo(&buf, "%s=(%s)", strVal(lfirst(ln)),
							 deparse_expression((Node *) e, ctx, false, false));
		}
	}
	if (st->sort)
	{
		appendStringInfo(&buf, "%csort=%s", first ? '?' : '&', st->sort);
		first = false;
	}
	if (st->table->paginated)
		appendStringInfo(&buf, "%cpage=1..", first ? '?' : '&');
	return buf.data;
}

static void
postscriptExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	PsScanState *st = node->fdw_state;

	ExplainPropertyText("Postscript Request", explain_request(node, st), es);
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
