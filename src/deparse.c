/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		Pushdown: which WHERE clauses, join clauses and ORDER BY the API can
 *		answer, and the query string they become.
 *
 * A clause is pushed when its column's API field accepts the operator (the
 * filter_ops of resources.c), the column has the type the API compares in
 * (text, bigint, timestamptz), and the other side is a value known when the
 * scan starts: a constant, a parameter ($1, PREPARE, generic plans, the
 * outer row of a nested loop) or a stable expression such as
 * now() - interval '1 day'.  Every pushed clause is also kept as a local
 * qual, so the API's answer is rechecked: a pushed filter only has to return
 * a superset of the rows SQL wants, which is what the rules below ensure.
 * A value the API cannot take exactly (an infinite or out-of-range
 * timestamp, a LIKE pattern that is not '%literal%') is not sent at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/restrictinfo.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "postscript_fdw.h"
#include "querystring.h"

/* the API filter of each btree comparison (suffixes: resources.c) */
static const struct
{
	int			strategy;
	uint32		op;
}			btree_ops[] = {
	{BTEqualStrategyNumber, PS_OP_EQ},
	{BTLessStrategyNumber, PS_OP_LT},
	{BTLessEqualStrategyNumber, PS_OP_LTE},
	{BTGreaterStrategyNumber, PS_OP_GT},
	{BTGreaterEqualStrategyNumber, PS_OP_GTE},
};

/* The column a Var of this relation stands for, or NULL */
static PsColumn *
rel_column(Node *node, RelOptInfo *baserel, PsTable *t)
{
	Var		   *var;

	if (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node == NULL || !IsA(node, Var))
		return NULL;
	var = (Var *) node;
	if (var->varno != baserel->relid || var->varlevelsup != 0 || var->varattno <= 0)
		return NULL;
	return ps_table_column(t, var->varattno);
}

/*
 * The type the API compares a column's field in, when the column holds the
 * API's values unaltered: the descriptor's type, or varchar for text.  A
 * column declared otherwise (timestamp without time zone, timestamptz(0)
 * that rounds, numeric, ...) is not pushed: its SQL comparisons need not
 * agree with the API's.
 */
static Oid
api_type(PsColumn *col)
{
	Oid			typid;

	if (col == NULL || col->def == NULL || col->typmod >= 0)
		return InvalidOid;
	if (strcmp(col->def->type, "text") == 0)
		typid = TEXTOID;
	else if (strcmp(col->def->type, "bigint") == 0)
		typid = INT8OID;
	else if (strcmp(col->def->type, "timestamptz") == 0)
		typid = TIMESTAMPTZOID;
	else
		return InvalidOid;
	if (col->typid == typid || (typid == TEXTOID && col->typid == VARCHAROID))
		return typid;
	return InvalidOid;
}

/*
 * A value the scan can compute before its first request: no Var of this
 * relation, nothing volatile, no subplan.  Vars of other relations are the
 * outer side of a parameterized path (or a LATERAL reference): the planner
 * turns them into nestloop parameters.
 */
static bool
is_scan_value(Node *node, RelOptInfo *baserel)
{
	if (node == NULL)
		return false;
	if (contain_volatile_functions(node) || contain_subplans(node))
		return false;
	return !bms_is_member(baserel->relid, pull_varnos(NULL, node));
}

/* text equality and LIKE are exact only under a deterministic collation */
static bool
collation_ok(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/*
 * Values of another type that ps_format_value turns into the column's API
 * type exactly, as SQL's cross-type operators compare them.
 */
static bool
value_type_ok(Oid apitype, Oid valtype)
{
	if (valtype == apitype)
		return true;
	if (apitype == INT8OID)
		return valtype == INT4OID || valtype == INT2OID;
	if (apitype == TIMESTAMPTZOID)
		return valtype == TIMESTAMPOID || valtype == DATEOID;
	return false;
}

/*
 * The PS_OP_* of "column OP value" for a btree operator of the column's API
 * type (text's < and > are never taken: the API's order is not the
 * collation's), or 0.
 */
static uint32
operator_kind(Oid opno, Oid apitype, Oid valtype, const char **suffix)
{
	TypeCacheEntry *tce = lookup_type_cache(apitype, TYPECACHE_BTREE_OPFAMILY);
	int			strategy;
	Oid			lefttype,
				righttype;

	if (!OidIsValid(opno) || !OidIsValid(tce->btree_opf) ||
		!op_in_opfamily(opno, tce->btree_opf))
		return 0;
	get_op_opfamily_properties(opno, tce->btree_opf, false, &strategy, &lefttype, &righttype);
	if (lefttype != apitype || righttype != valtype || !value_type_ok(apitype, valtype))
		return 0;
	if (apitype == TEXTOID && strategy != BTEqualStrategyNumber)
		return 0;
	for (int i = 0; i < lengthof(btree_ops); i++)
		if (btree_ops[i].strategy == strategy)
		{
			*suffix = ps_filter_suffix(btree_ops[i].op);
			return btree_ops[i].op;
		}
	return 0;
}

/* the literal of a LIKE pattern '%literal%', else NULL (querystring.c) */
static char *
like_contains_literal(const char *pat)
{
	char	   *lit = palloc(strlen(pat) + 1);

	return ps_qs_like_contains(pat, lit) ? lit : NULL;
}

static void
add_filter(PsScanPlan *plan, RestrictInfo *ri, const char *field, const char *suffix,
		   Expr *value, PsParamKind kind)
{
	char	   *name = psprintf("%s__%s", field, suffix);
	PsParam    *p;
	ListCell   *lc;

	/* one clause per parameter: a second one stays local only */
	foreach(lc, plan->params)
		if (strcmp(((PsParam *) lfirst(lc))->name, name) == 0)
			return;
	p = palloc0(sizeof(PsParam));
	p->name = name;
	p->type = exprType((Node *) value);
	p->kind = kind;
	p->expr = value;
	p->clause = ri;
	plan->params = lappend(plan->params, p);
	plan->pushed = lappend(plan->pushed, ri);
}

static void
set_id(PsScanPlan *plan, RestrictInfo *ri, Expr *value, PsIdMode mode)
{
	Assert(mode != PS_ID_NONE);
	if (plan->id_mode != PS_ID_NONE)
		return;
	plan->id_mode = mode;
	plan->id_expr = value;
	plan->id_clause = ri;
}

/* "column OP value", "value OP column" and "column LIKE pattern" */
static void
classify_opexpr(RelOptInfo *baserel, PsTable *t, RestrictInfo *ri, OpExpr *op,
				PsScanPlan *plan)
{
	PsColumn   *col;
	Node	   *value;
	Oid			opno = op->opno;
	Oid			apitype;
	const char *suffix = NULL;
	uint32		kind;

	if (list_length(op->args) != 2 || !collation_ok(op->inputcollid))
		return;
	col = rel_column(linitial(op->args), baserel, t);
	value = lsecond(op->args);
	if (col == NULL)
	{
		col = rel_column(lsecond(op->args), baserel, t);
		value = linitial(op->args);
		opno = get_commutator(opno);
	}
	apitype = api_type(col);
	if (!OidIsValid(apitype) || !is_scan_value(value, baserel))
		return;

	/* LIKE '%x%' on a field with __contains; other patterns stay local */
	if (op->opno == OID_TEXT_LIKE_OP)
	{
		if (opno != OID_TEXT_LIKE_OP || apitype != TEXTOID ||
			!(col->def->filter_ops & PS_OP_CONTAINS))
			return;
		if (IsA(value, Const) && !((Const *) value)->constisnull &&
			like_contains_literal(TextDatumGetCString(((Const *) value)->constvalue)) == NULL)
			return;
		add_filter(plan, ri, col->def->field, ps_filter_suffix(PS_OP_CONTAINS), (Expr *) value,
				   PS_PARAM_LIKE);
		return;
	}

	kind = operator_kind(opno, apitype, exprType(value), &suffix);
	if (kind == 0)
		return;
	if (kind == PS_OP_EQ && (col->def->flags & PS_COL_ID) && apitype == TEXTOID)
		set_id(plan, ri, (Expr *) value, PS_ID_ONE);
	else if (col->def->filter_ops & kind)
		add_filter(plan, ri, col->def->field, suffix, (Expr *) value,
				   kind == PS_OP_EQ && (col->def->flags & PS_COL_INT32)
				   ? PS_PARAM_INT32 : PS_PARAM_SCALAR);
}

/* "column = ANY (array)", which is also what IN (...) becomes */
static void
classify_saop(RelOptInfo *baserel, PsTable *t, RestrictInfo *ri,
			  ScalarArrayOpExpr *sa, PsScanPlan *plan)
{
	PsColumn   *col;
	Node	   *value;
	Oid			apitype;
	Oid			elemtype;
	const char *suffix = NULL;

	if (!sa->useOr || list_length(sa->args) != 2 || !collation_ok(sa->inputcollid))
		return;
	col = rel_column(linitial(sa->args), baserel, t);
	value = lsecond(sa->args);
	apitype = api_type(col);
	if (!OidIsValid(apitype) || !is_scan_value(value, baserel))
		return;
	elemtype = get_element_type(exprType(value));
	if (!OidIsValid(elemtype) ||
		operator_kind(sa->opno, apitype, elemtype, &suffix) != PS_OP_EQ)
		return;
	if ((col->def->flags & PS_COL_ID) && apitype == TEXTOID)
		set_id(plan, ri, (Expr *) value, PS_ID_ARRAY);
	else if (col->def->filter_ops & PS_OP_IN)
		add_filter(plan, ri, col->def->field, ps_filter_suffix(PS_OP_IN), (Expr *) value,
				   PS_PARAM_ARRAY);
}

/*
 * Decide what of a scan's clauses (RestrictInfos: restrictions, and for a
 * parameterized path its join clauses) goes to the API.  Nothing is removed
 * from the local quals: pushed clauses are rechecked.
 */
void
ps_plan_pushdown(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
				 List *conds, PsScanPlan *plan)
{
	ListCell   *lc;

	memset(plan, 0, sizeof(PsScanPlan));
	if (!t->sopts->pushdown)
		return;
	foreach(lc, conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (ri->pseudoconstant)
			continue;
		if (IsA(ri->clause, OpExpr))
			classify_opexpr(baserel, t, ri, (OpExpr *) ri->clause, plan);
		else if (IsA(ri->clause, ScalarArrayOpExpr))
			classify_saop(baserel, t, ri, (ScalarArrayOpExpr *) ri->clause, plan);
	}
	/* the object endpoint takes no filters: they stay local */
	if (plan->id_mode != PS_ID_NONE)
	{
		plan->params = NIL;
		plan->pushed = list_make1(plan->id_clause);
	}
	Assert((plan->id_mode != PS_ID_NONE) == (plan->id_expr != NULL));
	Assert(plan->id_mode != PS_ID_NONE ||
		   list_length(plan->pushed) == list_length(plan->params));
}

/* Would this join clause become a filter (or an id lookup) of the scan? */
bool
ps_join_clause_pushable(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
						RestrictInfo *ri)
{
	PsScanPlan	plan;

	ps_plan_pushdown(root, baserel, t, list_make1(ri), &plan);
	return plan.pushed != NIL;
}

/* Does a restriction of the scan hold only for a non-null column value? */
static bool
excludes_nulls(RelOptInfo *baserel, PsColumn *col)
{
	return ps_clauses_need_nonnull(extract_actual_clauses(baserel->baserestrictinfo, false),
								   baserel->relid, col->attnum);
}

/*
 * The API's sort for the query's ORDER BY, if it gives that order exactly:
 * one sort key on a sortable column of its API type, text only under the C
 * collation.  Where the API puts NULLs is not documented, so a field that
 * may be null is sorted by the API only when the WHERE clause excludes
 * NULLs, and another only in the default placement (NULLS LAST ascending,
 * FIRST descending).
 */
char *
ps_plan_sort(PlannerInfo *root, RelOptInfo *baserel, PsTable *t, List **pathkeys)
{
	PathKey    *pk;
	PsColumn   *col = NULL;
	ListCell   *lc;
	Oid			apitype;
	bool		desc;

	*pathkeys = NIL;
	if (!t->sopts->pushdown || !t->paginated || list_length(root->query_pathkeys) != 1)
		return NULL;
	pk = linitial(root->query_pathkeys);
	if (pk->pk_eclass->ec_has_volatile)
		return NULL;
	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *m = lfirst(lc);

		if (bms_equal(m->em_relids, baserel->relids) &&
			(col = rel_column((Node *) m->em_expr, baserel, t)) != NULL)
			break;
		col = NULL;
	}
	apitype = api_type(col);
	if (!OidIsValid(apitype) || !(col->def->flags & PS_COL_SORTABLE))
		return NULL;
	desc = ps_pathkey_desc(pk);
	if (apitype == TEXTOID && !ps_collation_is_c(pk->pk_eclass->ec_collation))
		return NULL;
	/* NULLs: excluded by the WHERE clause, or never there and not asked first */
	if (!excludes_nulls(baserel, col) &&
		((col->def->flags & PS_COL_NULLABLE) || pk->pk_nulls_first != desc))
		return NULL;
	/* the sort must be by the type's own btree order */
	if (lookup_type_cache(apitype, TYPECACHE_BTREE_OPFAMILY)->btree_opf != pk->pk_opfamily)
		return NULL;
	*pathkeys = list_make1(pk);
	return psprintf("%s__%s", col->def->field, desc ? "desc" : "asc");
}

/* ---------------------------------------------------------------- execution */

/*
 * A timestamp, timestamp without time zone or date value as a timestamptz
 * the API can take (years 1 to 9999); false if it has none.
 */
static bool
value_timestamptz(Datum value, Oid typid, TimestampTz *ts)
{
	int			overflow = 0;
	struct pg_tm tm;
	fsec_t		fsec;

	if (typid == DATEOID)
		*ts = date2timestamptz_opt_overflow(DatumGetDateADT(value), &overflow);
	else if (typid == TIMESTAMPOID)
		*ts = timestamp2timestamptz_opt_overflow(DatumGetTimestamp(value), &overflow);
	else
		*ts = DatumGetTimestampTz(value);
	return overflow == 0 && !TIMESTAMP_NOT_FINITE(*ts) &&
		timestamp2tm(*ts, NULL, &tm, &fsec, NULL, NULL) == 0 &&
		tm.tm_year >= 1 && tm.tm_year <= 9999;
}

static char *
format_timestamptz(TimestampTz ts)
{
	PsJson	   *j = ps_datum_to_json(TimestampTzGetDatum(ts), TIMESTAMPTZOID);
	char	   *s = pstrdup(json_object_get_string(j));

	json_object_put(j);
	return s;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t		n = strlen(s);
	size_t		m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/*
 * A timestamp filter in the form production clients send, second precision
 * ("2026-03-04T05:06:07Z").  A value with a fraction of a second widens the
 * bound to the whole second around it (__gt and __gte: down, __lt and
 * __lte: up), which fetches a few rows too many and never one too few: the
 * local filter, which every pushed clause keeps, drops them.  An __eq with
 * a fraction has no second form and is not sent.
 */
static char *
timestamp_filter(const char *name, Datum value, Oid typid)
{
	TimestampTz ts;
	int64		frac;

	if (!value_timestamptz(value, typid, &ts))
		return NULL;
	frac = ts % USECS_PER_SEC;
	if (frac < 0)
		frac += USECS_PER_SEC;
	if (frac != 0)
	{
		if (ends_with(name, "__eq"))
			return NULL;
		ts -= frac;
		if (ends_with(name, "__lt") || ends_with(name, "__lte"))
			ts += USECS_PER_SEC;
		if (!value_timestamptz(TimestampTzGetDatum(ts), TIMESTAMPTZOID, &ts))
			return NULL;
	}
	return format_timestamptz(ts);
}

/*
 * A filter value as the API reads it, or NULL when the API cannot take it
 * exactly (then the filter is not sent and the local qual decides).
 * Timestamps are sent in UTC with a Z, whatever the session's TimeZone; a
 * timestamp without time zone or a date is first read in the session's
 * TimeZone, as SQL compares it with a timestamptz.
 */
char *
ps_format_value(Datum value, Oid typid)
{
	switch (typid)
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
		case DATEOID:
			{
				TimestampTz ts;

				if (!value_timestamptz(value, typid, &ts))
					return NULL;
				return format_timestamptz(ts);
			}
		case BOOLOID:
			return DatumGetBool(value) ? "true" : "false";
		default:
			{
				Oid			outfunc;
				bool		isvarlena;
				char	   *s;

				getTypeOutputInfo(typid, &outfunc, &isvarlena);
				s = OidOutputFunctionCall(outfunc, value);
				return pg_server_to_any(s, strlen(s), PG_UTF8);
			}
	}
}

static int
cmp_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * Append one parameter to a query string (kind: PsParamKind); arrays become
 * repeated parameters.  Returns false when the value makes the clause
 * unsatisfiable (NULL, or an array of nothing but NULLs): then no request
 * is needed.  A value the API cannot take exactly appends nothing.
 */
bool
ps_append_param(StringInfo qs, const char *name, Datum value, bool isnull,
				Oid typid, int kind)
{
	char	   *s;

	Assert(kind == PS_PARAM_SCALAR || kind == PS_PARAM_ARRAY || kind == PS_PARAM_LIKE ||
		   kind == PS_PARAM_INT32);
	if (isnull)
		return false;
	if (kind == PS_PARAM_INT32)
	{
		int64		v = typid == INT8OID ? DatumGetInt64(value)
			: typid == INT4OID ? DatumGetInt32(value) : DatumGetInt16(value);

		Assert(typid == INT8OID || typid == INT4OID || typid == INT2OID);
		if (v < PG_INT32_MIN || v > PG_INT32_MAX)
			return false;
	}
	if (kind == PS_PARAM_ARRAY)
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Oid			elemtype = ARR_ELEMTYPE(arr);
		int16		elen;
		bool		ebyval;
		char		ealign;
		Datum	   *elems;
		bool	   *enulls;
		int			n,
					nvals = 0;
		char	  **vals;
		StringInfoData buf;

		get_typlenbyvalalign(elemtype, &elen, &ebyval, &ealign);
		deconstruct_array(arr, elemtype, elen, ebyval, ealign, &elems, &enulls, &n);
		vals = palloc(sizeof(char *) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			if (enulls[i])
				continue;
			/* one value the API cannot take: the whole list stays local */
			if ((vals[nvals++] = ps_format_value(elems[i], elemtype)) == NULL)
				return true;
		}
		if (nvals == 0)
			return false;
		/* each value once, in a stable order */
		qsort(vals, nvals, sizeof(char *), cmp_strings);
		initStringInfo(&buf);
		for (int i = 0; i < nvals; i++)
			if (i == 0 || strcmp(vals[i], vals[i - 1]) != 0)
				appendStringInfo(&buf, "&%s=%s", name, ps_url_encode(vals[i]));
		appendStringInfoString(qs, buf.data + (qs->len ? 0 : 1));
		return true;
	}
	if (kind == PS_PARAM_LIKE)
	{
		s = like_contains_literal(TextDatumGetCString(value));
		if (s != NULL)
			s = pg_server_to_any(s, strlen(s), PG_UTF8);
	}
	else if (typid == TIMESTAMPTZOID || typid == TIMESTAMPOID || typid == DATEOID)
		s = timestamp_filter(name, value, typid);
	else
		s = ps_format_value(value, typid);
	if (s != NULL)
		appendStringInfo(qs, "%s%s=%s", qs->len ? "&" : "", name, ps_url_encode(s));
	return true;
}

/* the query string of fragments frag[0..n-1] (NULL: left out), then the sort */
static char *
join_query(char **frag, int n, const char *sort)
{
	StringInfoData qs;

	initStringInfo(&qs);
	for (int i = 0; i < n; i++)
		if (frag[i] != NULL)
			appendStringInfo(&qs, "%s%s", qs.len ? "&" : "", frag[i]);
	if (sort != NULL)
		appendStringInfo(&qs, "%ssort=%s", qs.len ? "&" : "", sort);
	return qs.data;
}

/*
 * The query strings of a list scan, without its page: every filter with the
 * value value_of gives it (at plan time, run time or for EXPLAIN), then the
 * sort (NULL: none).  Returns NIL when a value rules out every row (a NULL):
 * then no request is needed.  When sent is not NULL, the clauses of the
 * filters the queries apply are appended to *sent (a filter whose value is
 * unknown or that the API cannot take exactly is not sent).
 *
 * Usually one query.  One longer than max_len bytes, unsorted, is split
 * into several along the values of its longest list (col__in=a&col__in=b):
 * each query takes a share of that list and all the rest, within max_len
 * where one value allows.  A record has one value of the column, and the
 * shares have no value in common (ps_append_param sends each value once),
 * so the queries' records are disjoint and together are the one query's.
 * A sorted query is never split: its parts would each be sorted, not the
 * whole (the planner offers a sorted scan only where no split may come,
 * sorted_path_ok in postscript_fdw.c).
 */
List *
ps_deparse_queries(List *params, PsParamValueFn value_of, void *arg,
				   const char *sort, int max_len, List **sent)
{
	int			n = list_length(params);
	char	  **frag = palloc0(sizeof(char *) * Max(n, 1));
	int			total = 0;
	int			longest = -1;
	int			rest;
	char	   *values;
	char	   *next;
	List	   *queries = NIL;
	StringInfoData share;
	ListCell   *lc;

	foreach(lc, params)
	{
		PsParam    *p = lfirst(lc);
		int			i = foreach_current_index(lc);
		Datum		value;
		bool		isnull;
		char	   *shown;
		StringInfoData one;

		initStringInfo(&one);
		switch (value_of(p, arg, &value, &isnull, &shown))
		{
			case PS_VALUE_DATUM:
				if (!ps_append_param(&one, p->name, value, isnull, p->type, p->kind))
					return NIL;
				break;
			case PS_VALUE_SHOWN:
				appendStringInfo(&one, "%s=%s", p->name, shown);
				break;
			case PS_VALUE_UNKNOWN:
				break;
		}
		if (one.len == 0)
			continue;
		frag[i] = one.data;
		total += one.len + 1;
		if (sent != NULL)
		{
			Assert(p->clause != NULL);
			*sent = lappend(*sent, p->clause);
		}
		/* a list whose values are known: the one to split, if any */
		if (p->kind == PS_PARAM_ARRAY && strchr(one.data, '&') != NULL &&
			(longest < 0 || one.len > (int) strlen(frag[longest])))
			longest = i;
	}
	if (sort != NULL)
		total += strlen("sort=") + strlen(sort) + 1;

	/* what the rest of the query takes, with the '&' before the share */
	rest = longest < 0 ? 0 : total - (int) strlen(frag[longest]) - 1;
	if (total - 1 <= max_len || longest < 0 || sort != NULL || rest >= max_len)
		return list_make1(join_query(frag, n, sort));

	/*
	 * Its values (name=value, each '&' within a value is %26) in shares of
	 * at least one value, each share as long as the query allows.
	 */
	values = frag[longest];
	initStringInfo(&share);
	for (char *v = values; v != NULL; v = next)
	{
		int			vlen;

		next = strchr(v, '&');
		vlen = next != NULL ? (int) (next - v) : (int) strlen(v);
		if (next != NULL)
			next++;
		if (share.len > 0 && rest + share.len + 1 + vlen > max_len)
		{
			frag[longest] = share.data;
			queries = lappend(queries, join_query(frag, n, sort));
			resetStringInfo(&share);
		}
		appendStringInfo(&share, "%s%.*s", share.len ? "&" : "", vlen, v);
	}
	frag[longest] = share.data;
	queries = lappend(queries, join_query(frag, n, sort));
	return queries;
}

/* positions in arg's strings: string order, then the one given first */
static int
cmp_first_of(const void *a, const void *b, void *arg)
{
	char	  **given = (char **) arg;
	int			x = *(const int *) a;
	int			y = *(const int *) b;
	int			c = strcmp(given[x], given[y]);

	return c != 0 ? c : (x > y) - (x < y);
}

/*
 * The ids (String) an id lookup fetches for the value of its id expression
 * (not NULL): each one that names an object, once, in the order given.  "",
 * "." and ".." would make {path}/{id} name another endpoint; no object has
 * such an id, so they are no row.
 */
List *
ps_fetchable_ids(Datum value, PsIdMode mode)
{
	List	   *ids = NIL;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			m = 0;
	char	  **given;
	int		   *order;
	bool	   *repeat;

	Assert(mode == PS_ID_ONE || mode == PS_ID_ARRAY);
	if (mode == PS_ID_ONE)
	{
		elems = &value;
		nulls = NULL;
		n = 1;
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);

		Assert(ARR_ELEMTYPE(arr) == TEXTOID);
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	}
	given = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		char	   *id;

		CHECK_FOR_INTERRUPTS();
		if (nulls != NULL && nulls[i])
			continue;
		id = TextDatumGetCString(elems[i]);
		if (ps_valid_object_id(id))
			given[m++] = id;
	}

	/*
	 * Each once, where it first comes: sorted copies find the repeats (a
	 * list searched for each id was quadratic in a large array).
	 */
	order = palloc(sizeof(int) * Max(m, 1));
	repeat = palloc0(sizeof(bool) * Max(m, 1));
	for (int i = 0; i < m; i++)
		order[i] = i;
	qsort_arg(order, m, sizeof(int), cmp_first_of, given);
	for (int i = 1; i < m; i++)
		if (strcmp(given[order[i]], given[order[i - 1]]) == 0)
			repeat[order[i]] = true;
	for (int i = 0; i < m; i++)
		if (!repeat[i])
			ids = lappend(ids, makeString(given[i]));
	return ids;
}
