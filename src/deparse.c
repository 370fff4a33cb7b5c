/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		Pushdown: which WHERE clauses and ORDER BY the API can answer, and
 *		the query string they become.
 *
 * A clause is pushed when its column's API field accepts the operator and
 * the other side is a value known when the scan starts (a constant, a
 * parameter, or a stable expression).  Every pushed clause is also kept as
 * a local qual, so the API's answer is rechecked: pushdown can only save
 * requests and rows, never change a result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "optimizer/restrictinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/pg_locale.h"
#include "utils/typcache.h"

#include "postscript_fdw.h"

static const struct
{
	int			strategy;
	uint32		op;
	const char *suffix;
}			btree_ops[] = {
	{BTEqualStrategyNumber, PS_OP_EQ, "eq"},
	{BTLessStrategyNumber, PS_OP_LT, "lt"},
	{BTLessEqualStrategyNumber, PS_OP_LTE, "lte"},
	{BTGreaterStrategyNumber, PS_OP_GT, "gt"},
	{BTGreaterEqualStrategyNumber, PS_OP_GTE, "gte"},
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
 * A value the scan can compute before its first request: no Vars of this
 * query level, nothing volatile, no subplans.  Params (PREPARE, generic
 * plans, nested-loop outer values) qualify.
 */
static bool
is_scan_constant(Node *node, RelOptInfo *baserel)
{
	Relids		relids;

	if (node == NULL)
		return false;
	if (contain_volatile_functions(node) || contain_subplans(node) ||
		contain_agg_clause(node) || contain_window_function(node))
		return false;
	relids = pull_varnos(NULL, node);
	if (!bms_is_empty(relids))
		return false;
	return true;
}

/* text equality/containment is exact only under a deterministic collation */
static bool
collation_ok(Oid collid)
{
	return !OidIsValid(collid) || get_collation_isdeterministic(collid);
}

/* the PS_OP_* of a btree operator on the column's own type, or 0 */
static uint32
operator_kind(Oid opno, Oid coltype, const char **suffix)
{
	TypeCacheEntry *tce = lookup_type_cache(coltype, TYPECACHE_BTREE_OPFAMILY);
	int			strategy;
	Oid			lefttype,
				righttype;

	if (!OidIsValid(tce->btree_opf))
		return 0;
	get_op_opfamily_properties(opno, tce->btree_opf, false, &strategy, &lefttype, &righttype);
	if (!op_in_opfamily(opno, tce->btree_opf) || lefttype != coltype || righttype != coltype)
		return 0;
	for (int i = 0; i < lengthof(btree_ops); i++)
		if (btree_ops[i].strategy == strategy)
		{
			*suffix = btree_ops[i].suffix;
			return btree_ops[i].op;
		}
	return 0;
}

static Oid
commutator_or_self(Oid opno, bool swapped)
{
	return swapped ? get_commutator(opno) : opno;
}

/*
 * A LIKE pattern of the form '%literal%' without other wildcards or
 * escapes: the literal, else NULL.
 */
static char *
like_contains_literal(Const *c)
{
	char	   *pat;
	size_t		len;

	if (c->constisnull || c->consttype != TEXTOID)
		return NULL;
	pat = TextDatumGetCString(c->constvalue);
	len = strlen(pat);
	if (len < 3 || pat[0] != '%' || pat[len - 1] != '%')
		return NULL;
	pat[len - 1] = '\0';
	pat++;
	if (strpbrk(pat, "%_\\") != NULL)
		return NULL;
	return pat;
}

static void
add_filter(PsScanPlan *plan, const char *field, const char *suffix, Expr *value,
		   Oid typid, bool is_array)
{
	char	   *name = psprintf("%s__%s", field, suffix);
	ListCell   *lc;

	/* one clause per parameter: a second one stays local only */
	foreach(lc, plan->param_names)
		if (strcmp(strVal(lfirst(lc)), name) == 0)
			return;
	plan->param_names = lappend(plan->param_names, makeString(name));
	plan->param_types = lappend_oid(plan->param_types, typid);
	plan->param_arrays = lappend_int(plan->param_arrays, is_array ? 1 : 0);
	plan->param_exprs = lappend(plan->param_exprs, value);
}

/* Examine one clause; record what the API can do with it. */
static void
classify_clause(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
				Expr *clause, PsScanPlan *plan)
{
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *left,
				   *right;
		PsColumn   *col;
		Node	   *value;
		bool		swapped = false;
		const char *suffix = NULL;
		uint32		kind;
		char	   *opname;

		if (list_length(op->args) != 2)
			return;
		left = linitial(op->args);
		right = lsecond(op->args);
		col = rel_column(left, baserel, t);
		value = right;
		if (col == NULL)
		{
			col = rel_column(right, baserel, t);
			value = left;
			swapped = true;
		}
		if (col == NULL || !is_scan_constant(value, baserel) ||
			!collation_ok(op->inputcollid))
			return;

		/* LIKE '%x%' on a field with __contains */
		opname = get_opname(op->opno);
		if (!swapped && opname && strcmp(opname, "~~") == 0 && IsA(value, Const) &&
			col->def && (col->def->filter_ops & PS_OP_CONTAINS) &&
			col->typid == TEXTOID)
		{
			char	   *lit = like_contains_literal((Const *) value);

			if (lit)
				add_filter(plan, col->def->field, "contains",
						   (Expr *) makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
											  CStringGetTextDatum(lit), false, false),
						   TEXTOID, false);
			return;
		}

		kind = operator_kind(commutator_or_self(op->opno, swapped), col->typid, &suffix);
		if (kind == 0)
			return;

		/* id = x: GET {path}/{id} */
		if (kind == PS_OP_EQ && col->def && (col->def->flags & PS_COL_ID) &&
			col->typid == TEXTOID && plan->id_expr == NULL)
		{
			plan->id_expr = (Expr *) value;
			plan->id_is_array = false;
			return;
		}
		if (col->def == NULL || (col->def->filter_ops & kind) == 0)
			return;
		add_filter(plan, col->def->field, suffix, (Expr *) value, col->typid, false);
		return;
	}

	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *sa = (ScalarArrayOpExpr *) clause;
		PsColumn   *col;
		Node	   *value;
		const char *suffix = NULL;

		if (!sa->useOr || list_length(sa->args) != 2)
			return;
		col = rel_column(linitial(sa->args), baserel, t);
		value = lsecond(sa->args);
		if (col == NULL || !is_scan_constant(value, baserel) ||
			!collation_ok(sa->inputcollid))
			return;
		if (operator_kind(sa->opno, col->typid, &suffix) != PS_OP_EQ)
			return;
		if (col->def && (col->def->flags & PS_COL_ID) && col->typid == TEXTOID &&
			plan->id_expr == NULL)
		{
			plan->id_expr = (Expr *) value;
			plan->id_is_array = true;
			return;
		}
		if (col->def == NULL || (col->def->filter_ops & PS_OP_IN) == 0)
			return;
		add_filter(plan, col->def->field, "in", (Expr *) value, col->typid, true);
	}
}

/*
 * Decide what of the scan's restriction clauses goes to the API.  Nothing
 * is removed from the local quals: pushed clauses are rechecked.
 */
void
ps_plan_pushdown(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
				 List *conds, PsScanPlan *plan)
{
	ListCell   *lc;

	if (!t->pushdown)
		return;
	foreach(lc, conds)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		classify_clause(root, baserel, t, ri->clause, plan);
	}
	/* the object endpoint takes no filters: they stay local */
	if (plan->id_expr != NULL)
	{
		plan->param_names = NIL;
		plan->param_types = NIL;
		plan->param_arrays = NIL;
		plan->param_exprs = NIL;
	}
}

/*
 * The API's sort for the query's ORDER BY, if it can give that order
 * exactly: one sort key on a sortable column, NULLS LAST ascending or NULLS
 * FIRST descending (the API's placement of NULLs), and no collation
 * question (text sorts are pushed only under the C collation).
 */
char *
ps_plan_sort(PlannerInfo *root, RelOptInfo *baserel, PsTable *t, List **pathkeys)
{
	PathKey    *pk;
	EquivalenceMember *em = NULL;
	PsColumn   *col = NULL;
	ListCell   *lc;
	bool		desc;

	*pathkeys = NIL;
	if (!t->pushdown || !t->paginated || list_length(root->query_pathkeys) != 1)
		return NULL;
	pk = linitial(root->query_pathkeys);
	if (pk->pk_eclass->ec_has_volatile)
		return NULL;
	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *m = lfirst(lc);

		if (bms_equal(m->em_relids, baserel->relids) &&
			(col = rel_column((Node *) m->em_expr, baserel, t)) != NULL)
		{
			em = m;
			break;
		}
	}
	if (em == NULL || col == NULL || col->def == NULL ||
		!(col->def->flags & PS_COL_SORTABLE))
		return NULL;
	desc = (pk->pk_strategy == BTGreaterStrategyNumber);
	if (pk->pk_nulls_first != desc)
		return NULL;
	if (col->typid == TEXTOID && !lc_collate_is_c(pk->pk_eclass->ec_collation))
		return NULL;
	if (col->typid != TEXTOID && col->typid != TIMESTAMPTZOID && col->typid != INT8OID &&
		col->typid != INT4OID && col->typid != TIMESTAMPOID)
		return NULL;
	/* the sort must be by the column's btree order for its type */
	{
		TypeCacheEntry *tce = lookup_type_cache(col->typid, TYPECACHE_BTREE_OPFAMILY);

		if (tce->btree_opf != pk->pk_opfamily)
			return NULL;
	}
	*pathkeys = list_make1(pk);
	return psprintf("%s__%s", col->def->field, desc ? "desc" : "asc");
}

/* ---------------------------------------------------------------- execution */

/* a filter value as the API reads it */
char *
ps_format_value(Datum value, Oid typid)
{
	switch (typid)
	{
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			{
				PsJson *j = ps_datum_to_json(value, typid);
				char	   *s = pstrdup(json_object_get_string(j));

				json_object_put(j);
				return s;
			}
		case BOOLOID:
			return DatumGetBool(value) ? "true" : "false";
		default:
			{
				Oid			outfunc;
				bool		isvarlena;

				getTypeOutputInfo(typid, &outfunc, &isvarlena);
				return OidOutputFunctionCall(outfunc, value);
			}
	}
}

/*
 * Append one parameter to a query string; arrays become repeated
 * parameters.  Returns false when the value makes the clause unsatisfiable
 * (NULL, or an array of nothing but NULLs): then no request is needed.
 */
bool
ps_append_param(StringInfo qs, const char *name, Datum value, bool isnull,
				Oid typid, bool is_array)
{
	if (isnull)
		return false;
	if (is_array)
	{
		ArrayType  *arr = DatumGetArrayTypeP(value);
		Oid			elemtype = ARR_ELEMTYPE(arr);
		int16		elen;
		bool		ebyval;
		char		ealign;
		Datum	   *elems;
		bool	   *enulls;
		int			n;
		bool		any = false;

		get_typlenbyvalalign(elemtype, &elen, &ebyval, &ealign);
		deconstruct_array(arr, elemtype, elen, ebyval, ealign, &elems, &enulls, &n);
		for (int i = 0; i < n; i++)
		{
			if (enulls[i])
				continue;
			appendStringInfo(qs, "%s%s=%s", qs->len ? "&" : "", name,
							 ps_url_encode(ps_format_value(elems[i], elemtype)));
			any = true;
		}
		return any;
	}
	appendStringInfo(qs, "%s%s=%s", qs->len ? "&" : "", name,
					 ps_url_encode(ps_format_value(value, typid)));
	return true;
}
