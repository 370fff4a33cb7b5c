/*-------------------------------------------------------------------------
 *
 * postscript_fdw.h
 *		The one header of postscript_fdw: every module's interface.
 *
 * Modules (one concern each):
 *	postscript_fdw.c	FDW callbacks: planning, scanning, EXPLAIN
 *	src/resources.c		the Postscript objects, as data
 *	src/options.c		option validation and lookup
 *	src/connection.c	per-backend connection cache (one per user mapping)
 *	src/http.c			HTTP requests: retries, concurrent pages, cancel
 *	src/ratelimit.c		the client-side rate limit, shared between backends
 *	src/api_error.c		Postscript's error bodies: conflicts, unknown ids,
 *						HTTP errors as PostgreSQL errors
 *	src/pagescan.c		streaming JSON scanner for pages (plain C)
 *	src/json_stream.c	pages as they arrive: scanner set-up, JSON errors,
 *						the check of a list response
 *	src/json_conv.c		page values to Datums, and Datums to JSON
 *	src/deparse.c		pushdown: WHERE/ORDER BY/LIMIT to query strings
 *	src/modify.c		INSERT/UPDATE/DELETE: rows to write requests
 *	src/write_queue.c	writes sent at commit, and sending one write
 *	src/validate.c		plain-C checks of written values
 *	src/import.c		IMPORT FOREIGN SCHEMA
 *	src/reference.c		the catalog as SQL rows, for the generated reference
 *	src/webhook.c		webhook deliveries: verify, store once
 *	src/webhook_worker.c	the receiver: a background worker serving HTTP
 *
 *-------------------------------------------------------------------------
 */
#ifndef POSTSCRIPT_FDW_H
#define POSTSCRIPT_FDW_H

#include "postgres.h"

/* json-c's type is renamed: PostgreSQL has a function named json_object */
#define json_object PsJson
#include <json-c/json.h>
#undef json_object

#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"

#include "pg_compat.h"
#include "pagescan.h"

/* ----------------------------------------------------------------
 * resources.c -- the Postscript objects
 * ----------------------------------------------------------------
 */

/* filter operators a column's API field accepts (bit set) */
#define PS_OP_EQ		0x0001
#define PS_OP_GT		0x0002
#define PS_OP_GTE		0x0004
#define PS_OP_LT		0x0008
#define PS_OP_LTE		0x0010
#define PS_OP_CONTAINS	0x0020
#define PS_OP_IN		0x0040
#define PS_OPS_RANGE	(PS_OP_EQ | PS_OP_GT | PS_OP_GTE | PS_OP_LT | PS_OP_LTE)

/* column flags */
#define PS_COL_SORTABLE		0x0001	/* accepted by sort={field}__asc|desc */
#define PS_COL_ID			0x0002	/* the object id: GET {path}/{id} */
#define PS_COL_WRITE_ONLY	0x0004	/* only written, never in a read */
#define PS_COL_UPDATABLE	0x0008	/* may be set by UPDATE */
#define PS_COL_RESULT		0x0010	/* filled from a write's response */
#define PS_COL_NULLABLE		0x0020	/* may be null: where the API sorts NULLs is
									 * unknown */
#define PS_COL_INT32		0x0040	/* a 32-bit integer to the API: a filter value
									 * beyond it matches no row */

/*
 * What a column written to Postscript holds: how its value is checked
 * (before any request) and put into the body.
 */
typedef enum PsValueKind
{
	PS_VAL_TEXT = 0,			/* a non-empty string */
	PS_VAL_PHONE,				/* normalized to E.164 (phone.c) */
	PS_VAL_EMAIL,				/* validate.c */
	PS_VAL_TAGS,				/* array of non-empty strings */
	PS_VAL_SUBSCRIBER_PROPERTIES,	/* object of strings, integers, string
									 * arrays, ISO dates; at most 50 keys */
	PS_VAL_OBJECT,				/* any JSON object (webhook headers) */
	PS_VAL_EVENT_PROPERTIES,	/* object of strings, booleans, integers,
								 * floats */
	PS_VAL_EVENT_TYPE,			/* letters, digits, underscore */
	PS_VAL_EVENT_TIME,			/* "%Y-%m-%d %H:%M:%S.%f" in UTC */
	PS_VAL_CUSTOMER_ID,			/* a positive integer */
	PS_VAL_ORIGIN				/* website, social or other */
} PsValueKind;

typedef struct PsColumnDef
{
	const char *name;			/* column name in IMPORT FOREIGN SCHEMA */
	const char *type;			/* its type there */
	const char *field;			/* JSON path, dotted; "$" = whole object */
	uint32		filter_ops;		/* PS_OP_* the list endpoint accepts */
	uint32		flags;			/* PS_COL_* */
	const char *body_key;		/* key in a write's body; NULL = not sent */
	const char *doc;			/* one line of docs/reference.md */
	PsValueKind value;			/* written columns: what the value is */
} PsColumnDef;

/*
 * A rule on the body keys of a write: of the keys listed (comma-separated),
 * at least min and at most max must be given.
 */
typedef struct PsWriteRule
{
	const char *keys;
	int			min;
	int			max;
} PsWriteRule;

/* what a write whose outcome is unknown (timeout, cut, 5xx) becomes */
typedef enum PsReconcile
{
	PS_RECONCILE_NONE = 0,		/* not idempotent, cannot be checked: an
								 * error, never sent again */
	PS_RECONCILE_IDEMPOTENT,	/* sending twice is harmless: retried like a
								 * read */
	PS_RECONCILE_CONFLICT,		/* sent again: a conflict in answer proves
								 * the earlier attempt was applied */
	PS_RECONCILE_GONE			/* a delete: retried like a read; an unknown
								 * id answering a retry proves an earlier
								 * attempt deleted it */
} PsReconcile;

/* how a write's 2xx answer becomes the returned row */
typedef enum PsWriteResult
{
	PS_RESULT_NONE = 0,			/* nothing useful: the row as given */
	PS_RESULT_OBJECT,			/* the object written */
	PS_RESULT_ID_LIST			/* {"<result_key>": ["id", ...]}: the id */
} PsWriteResult;

/*
 * One write endpoint: INSERT, UPDATE or DELETE on a resource.  Adding a
 * write is an entry here (resources.c), not code.
 */
typedef struct PsWriteSpec
{
	const char *method;
	const char *path;			/* "{id}" is the row's id (UPDATE, DELETE) */
	const PsWriteRule *rules;
	int			nrules;
	PsReconcile reconcile;
	PsWriteResult result;
	const char *result_key;		/* PS_RESULT_ID_LIST: the array's key */
	const char *const *renames;	/* result: pairs "column field", "from
								 * field", NULL-terminated; copies a
								 * response member under another name */
	const char *const *subjects;	/* body keys whose values name what a
									 * write changes (with the path's id):
									 * at commit, writes of this spec that
									 * share none go concurrently, the others
									 * in order; NULL: every write of it in
									 * order (write_queue.c) */
} PsWriteSpec;

typedef struct PsResource
{
	const char *name;			/* resource option value and table name */
	const char *path;			/* list (or object) endpoint */
	const char *records_key;	/* array key in a list response; NULL: the
								 * response is the one record */
	bool		paginated;		/* page=N with page_info.total_pages */
	bool		readable;		/* false: write-only (events) */
	bool		documented;		/* in Postscript's public reference (part A) */
	const PsWriteSpec *insert;	/* NULL: no INSERT */
	const PsWriteSpec *update;	/* NULL: no UPDATE */
	const PsWriteSpec *del;		/* NULL: no DELETE */
	const char *refused_hint;	/* why a missing write is refused, and what
								 * instead */
	const PsColumnDef *columns;
	int			ncolumns;
	const char *doc;
	bool		empty_is_none;	/* a list answered {} has no records (the
								 * contract says so of keywords); else {}
								 * lacks the records key, an error */
} PsResource;

extern const PsResource ps_resources[];
extern const int ps_nresources;

/* a filter the API takes: {field}__{suffix} */
typedef struct PsFilterOp
{
	uint32		op;				/* PS_OP_* */
	const char *suffix;
} PsFilterOp;

extern const PsFilterOp ps_filter_ops[];	/* in the reference's order */
extern const int ps_nfilter_ops;
extern const char *ps_filter_suffix(uint32 op);

extern const PsResource *ps_resource_by_name(const char *name);
extern const PsColumnDef *ps_column_by_name(const PsResource *res, const char *name);
extern const PsColumnDef *ps_column_by_field(const PsResource *res, const char *field);
extern char *ps_resource_names(void);
extern bool ps_valid_object_id(const char *id);
extern char *ps_object_path(const char *path, const char *id);

/* ----------------------------------------------------------------
 * options.c
 * ----------------------------------------------------------------
 */
/*
 * The options, as options.c's declarations store them: a server's, with a
 * foreign table's over them where both may set one (pushdown,
 * use_remote_estimate, batch_size, send_at_commit).  Read-only: a default's
 * strings are shared by every copy.
 */
typedef struct PsServerOptions
{
	char	   *api_url;		/* no trailing slash */
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			low_speed_time_s;	/* abort if < 1 byte/s for this long */
	int			max_retries;
	int			max_retry_wait_ms;	/* cap on total backoff per request */
	double		rate_limit;		/* requests per second; 0 = unlimited */
	int			rate_burst;
	int			max_concurrency;
	bool		shared_rate_limit;	/* use the shared bucket when preloaded */
	bool		read_in_groups; /* a paced scan's pages in groups (http.c) */
	int64		max_response_bytes;
	int			max_json_depth;
	bool		pushdown;
	bool		use_remote_estimate;
	int			page_size_estimate; /* rows per page assumed by the planner */
	int			batch_size;
	bool		send_at_commit; /* writes wait for COMMIT (write_queue.c) */
	char	   *default_country;
	char	   *ca_file;
	int			progress_pages; /* NOTICE every N pages; 0 = never */
	int			max_url_length; /* a longer list query is split */
} PsServerOptions;

typedef struct PsUserOptions
{
	char	   *api_key;
	char	   *shop_token;
	char	   *webhook_token;	/* Postscript-Signature of deliveries */
} PsUserOptions;

/* one foreign column, resolved: where its value comes from and how */
typedef struct PsColumn
{
	AttrNumber	attnum;
	char	   *name;
	char	   *field;			/* dotted JSON path; "$" = whole object */
	char	  **path;			/* field split at dots */
	int			npath;
	const PsColumnDef *def;		/* descriptor column with that field, or
								 * NULL */
	Oid			typid;
	int32		typmod;
	int			conv;			/* PsConvKind, json_conv.c: of the type
								 * under any domain */
	int32		basetypmod;		/* typmod, or the domain's */
	Oid			domain;			/* a domain over that type: checked after
								 * the conversion; InvalidOid: none */
	void	   *domain_extra;	/* domain_check()'s cache, in domain_cxt */
	MemoryContext domain_cxt;
	FmgrInfo	infunc;			/* type input function (generic path) */
	Oid			ioparam;
	Oid			elemtype;		/* arrays: element type */
	struct PsColumn *elem;		/* arrays: how an element converts */
	int16		elem_len;
	bool		elem_byval;
	char		elem_align;
} PsColumn;

/* a foreign table, resolved at plan or execution time */
typedef struct PsTable
{
	Oid			relid;
	char	   *relname;
	const PsResource *res;
	char	   *endpoint;		/* path actually requested */
	char	   *records_key;	/* NULL: response is one record */
	bool		paginated;
	int			ncolumns;		/* live (non-dropped) columns */
	PsColumn   *columns;		/* by position; columns[i].attnum */
	int			natts;			/* tuple descriptor size */
	PsServerOptions *sopts;		/* the server's options, the table's over
								 * them */
	Oid			serverid;
} PsTable;

extern PsServerOptions *ps_get_server_options(ForeignServer *server);
extern PsUserOptions *ps_get_user_options(UserMapping *um);
extern PsTable *ps_get_table(Oid relid);
extern PsColumn *ps_table_column(PsTable *t, AttrNumber attnum);

/* ----------------------------------------------------------------
 * connection.c / http.c
 * ----------------------------------------------------------------
 */
typedef struct PsConnStats
{
	int64		requests;
	int64		status_2xx;
	int64		status_4xx;
	int64		status_5xx;
	int64		status_429;
	int64		transport_errors;
	int64		retries;
	double		rate_wait_ms;
	double		backoff_wait_ms;
	int64		bytes_received;
	int64		rows;
} PsConnStats;

/* one per user mapping and backend, kept across queries (keep-alive) */
typedef struct PsConn
{
	Oid			umid;			/* hash key */
	Oid			serverid;
	Oid			userid;
	char	   *server_name;
	bool		invalidated;	/* options changed: rebuild before next use */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	MemoryContext cxt;			/* holds opts and header strings */
	PsServerOptions *opts;
	void	   *easy;			/* CURL * */
	void	   *multi;			/* CURLM *, made by ps_http_multi_init */
	struct PsMultiState *multi_state;	/* what it waits on (http.c) */
	void	   *headers;		/* struct curl_slist *, with the secrets */
	bool		busy;			/* easy handle attached to multi */
	int			active_pipelines;	/* PsPipelines using multi: no rebuild */
	uint64		bucket_key;		/* hash of URL, key and token (ratelimit.c) */
	struct PsRateState *rate;	/* this connection's own limiter, used
								 * without the shared one (ratelimit.c) */
	PsConnStats stats;
} PsConn;

extern PsConn *ps_get_connection(Oid serverid, Oid userid);
/* the role's user mapping, else PUBLIC's; an error naming the remedy */
extern UserMapping *ps_get_user_mapping(Oid userid, Oid serverid);
extern double ps_now_seconds(void);
extern List *ps_all_connections(void);

/* request flags */
#define PS_HTTP_ALLOW_404	0x0001	/* return an unknown-id answer (404, or 400
									 * with {}: PS_ANSWER_NO_SUCH_ID) instead of
									 * raising it */
#define PS_HTTP_ALLOW_4XX	0x0002	/* return any final 4xx instead of raising
									 * it, for the caller to classify */
#define PS_HTTP_WRITE		0x0004	/* not idempotent: retry only when the
									 * request surely was not applied (implies
									 * PS_HTTP_CHANGES) */
#define PS_HTTP_CHANGES		0x0008	/* changes something: a final answer that
									 * leaves it unknown whether it was
									 * applied (lost, a 5xx) is returned as
									 * maybe_applied, not raised; and once an
									 * attempt may have been applied, so is
									 * any final failure but a 4xx */
#define PS_HTTP_SENT_BEFORE	0x0010	/* an earlier request of this write may
									 * have been applied (with
									 * PS_HTTP_CHANGES) */

typedef struct PsHttpResult
{
	long		status;			/* HTTP status */
	char	   *body;			/* NUL-terminated, palloc'd */
	PsPageScan *page;			/* ps_http_read and 2xx: the body, scanned
								 * as it arrived (body stays NULL) */
	size_t		len;
	bool		maybe_applied;	/* a write whose outcome is unknown */
	bool		sent_before;	/* PS_HTTP_CHANGES: an attempt before this
								 * answer may have been applied */
	int			retries;		/* retries this request took */
} PsHttpResult;

/* conn->multi (NULL if libcurl could not make one) and what it waits on */
extern void ps_http_multi_init(PsConn *conn);

/*
 * Perform one API request (path is under api_url and carries the query
 * string), retrying and rate limiting as the server options say; raises an
 * ERROR for any API failure not allowed by flags.
 */
extern void ps_http_request(PsConn *conn, const char *method, const char *path,
							const char *body, int flags, PsHttpResult *result);
extern double ps_http_backoff_ms(PsConn *conn, int attempt, double *waited_ms);

/*
 * GET path, the body scanned (as it arrives, or once decoded if it came
 * gzip'd) into scan (ps_page_new): on a
 * 2xx answer result->page is scan, complete and valid JSON (else an ERROR);
 * otherwise as ps_http_request.  owner: the scan's mark in the rate
 * limiter (ps_http_new_owner), or 0.
 */
extern void ps_http_read(PsConn *conn, const char *path, int flags, PsPageScan *scan,
						 uint64 owner, PsHttpResult *result);
extern uint64 ps_http_new_owner(void);

/*
 * Requests in flight concurrently on the connection's multi handle (the
 * next pages of a scan, the writes of a commit): queued in order, each
 * started as soon as the rate limit (and its own delay) lets it, each 2xx
 * body scanned into its slot's scanner (made once by new_page, emptied for
 * each request) or, without new_page, kept; results taken in order
 * (ps_pipeline_next) or as they come (ps_pipeline_next_any, by tag).
 * Failures are retried in the pipeline as ps_http_request() retries them,
 * and a final one raises its error.  A result stays valid until the next
 * request is queued.  At most size requests queued and not taken.  Its
 * requests carry owner in the rate limiter: a scan's mark, for pages read
 * in groups (0 for writes, which never are).
 */
typedef PsPageScan *(*PsNewPageFn) (void *arg);
typedef struct PsPipeline PsPipeline;
extern PsPipeline *ps_pipeline_create(PsConn *conn, int size, PsNewPageFn new_page,
									  void *arg, uint64 owner);
extern void ps_pipeline_add(PsPipeline *p, const char *path);
extern void ps_pipeline_send(PsPipeline *p, const char *method, const char *path,
							 const char *body, int flags, double delay_ms, int tag);
extern void ps_pipeline_next_any(PsPipeline *p, PsHttpResult *res, int *tag);

/* what became of a request not yet taken (ps_pipeline_fate) */
typedef enum PsPipeFate
{
	PS_FATE_NOT_SENT,			/* never written */
	PS_FATE_MAYBE,				/* written, outcome unknown */
	PS_FATE_APPLIED,			/* answered 2xx */
	PS_FATE_REFUSED				/* answered 4xx, nothing before it applied */
} PsPipeFate;
extern PsPipeFate ps_pipeline_fate(PsPipeline *p, int tag);
extern int	ps_pipeline_pending(PsPipeline *p);
extern void ps_pipeline_next(PsPipeline *p, PsHttpResult *res);

/* api_error.c -- Postscript's error format */
/* the API's message out of any of its three error body shapes (or NULL) */
extern char *ps_api_error_message(const char *body, size_t len);
/* what an error answer says of the object a request names */
typedef enum PsApiAnswer
{
	PS_ANSWER_OTHER,			/* none of those below (or not a 4xx) */
	PS_ANSWER_CONFLICT,			/* it already exists */
	PS_ANSWER_NOT_FOUND,		/* Postscript could not find an object the
								 * request names (404, error_code 3001) */
	PS_ANSWER_UNKNOWN_ID,		/* no such id: 400 {}, or any other 404 */
} PsApiAnswer;

/* whether the id in the path is unknown (also so when Postscript says so) */
#define PS_ANSWER_NO_SUCH_ID(a) \
	((a) == PS_ANSWER_UNKNOWN_ID || (a) == PS_ANSWER_NOT_FOUND)
extern PsApiAnswer ps_api_classify(long status, const char *body, size_t len);
extern void ps_report_http_status(PsConn *conn, const char *method, const char *path,
								  long status, const char *body, size_t len,
								  int retries) pg_attribute_noreturn();
extern int	ps_request_errcontext(const char *server_name, const char *method,
								  const char *path);

/* ----------------------------------------------------------------
 * json_stream.c -- pages as they arrive
 * ----------------------------------------------------------------
 */

/* nesting allowed where no server option applies (a write's answer) */
#define PS_MAX_JSON_DEPTH	10000

/* PsAllocFn over a memory context: NULL when out of memory, never raises */
extern void *ps_alloc(void *cxt, size_t size);

struct PsRowReader;

/*
 * A scanner for one body in the current memory context: the records of a
 * list (records_key), one record, or an array's elements; reader NULL:
 * no value wanted (counting records).
 */
extern PsPageScan *ps_page_new(struct PsRowReader *reader, PsScanMode mode,
							   const char *records_key, int max_depth);

/*
 * The body has been received whole: raises 22032 unless it was one JSON
 * value.  server, method and path: the request, for the error's context.
 */
extern void ps_page_finish(PsPageScan *scan, int64 received, const char *server,
						   const char *method, const char *path);

/*
 * a list response without its records array: raises, for every reader
 * alike ({} is no records where the table's resource says so)
 */
extern void ps_page_check_list(PsPageScan *scan, const PsTable *t,
							   const char *server, const char *path);

/* parse a response body (a write's answer) with json-c; the result is freed
 * with the current memory context (a reset callback), raises on malformed
 * JSON */
extern PsJson *ps_parse_json(const char *body, size_t len, int max_depth,
							 const char *server, const char *method, const char *path);

/* ----------------------------------------------------------------
 * json_conv.c
 * ----------------------------------------------------------------
 */
typedef enum PsConvKind
{
	PS_CONV_GENERIC = 0,		/* type input function on the text form */
	PS_CONV_TEXT,
	PS_CONV_INT2,
	PS_CONV_INT4,
	PS_CONV_INT8,
	PS_CONV_FLOAT8,
	PS_CONV_NUMERIC,
	PS_CONV_BOOL,
	PS_CONV_TIMESTAMPTZ,
	PS_CONV_TIMESTAMP,
	PS_CONV_DATE,
	PS_CONV_JSONB,
	PS_CONV_JSON,
	PS_CONV_ARRAY				/* JSON array to a PostgreSQL array */
} PsConvKind;

/* reads a table's records: the columns a scan needs, mapped to scanner slots */
typedef struct PsRowReader
{
	PsTable    *table;
	PsPageSpec *spec;
	int			nslots;
	int		   *slot_first;		/* slot s's columns: slot_cols[slot_first[s]
								 * .. slot_first[s + 1]) */
	PsColumn  **slot_cols;
	int			id_slot;		/* the record's "id", for the error context */
	bool		utf8;			/* the database is UTF8: no conversion */
	MemoryContext cxt;			/* the reader's, for what it keeps */
	PsPageScan *elements;		/* reads array columns, reset for each */
	struct JbStacks *jb;		/* the jsonb encoder's, kept between rows */
	PsColumn   *whole_jsonb;	/* a jsonb column of the whole record, when
								 * jsonb columns of one key are read too:
								 * those are copied out of its value */
	int			whole_slot;
} PsRowReader;

extern void ps_column_prepare(PsColumn *col);
extern PsRowReader *ps_row_reader(PsTable *t, const Bitmapset *attrs_used);
extern void ps_row_values(PsRowReader *rr, PsJsonType type, const PsField *fields,
						  uint32 nfields, Datum *values, bool *nulls);
extern void ps_record_to_values(PsTable *t, PsJson *rec, Datum *values,
								bool *nulls);
extern PsJson *ps_datum_to_json(Datum value, Oid typid);
extern bool ps_parse_iso8601(const char *s, size_t len, int64 *result);

/* ----------------------------------------------------------------
 * deparse.c -- pushdown
 * ----------------------------------------------------------------
 */

/* how a pushed value becomes query parameters */
typedef enum PsParamKind
{
	PS_PARAM_SCALAR = 0,		/* name=value */
	PS_PARAM_ARRAY = 1,			/* name=v1&name=v2: a repeated parameter */
	PS_PARAM_LIKE = 2,			/* a LIKE pattern; sent if it is '%literal%' */
	PS_PARAM_INT32 = 3			/* name=value, a value beyond 32 bits rules
								 * out every row */
} PsParamKind;

/* an id lookup: GET {path}/{id} per id instead of the list endpoint */
typedef enum PsIdMode
{
	PS_ID_NONE = 0,				/* a list scan */
	PS_ID_ONE,					/* id = value */
	PS_ID_ARRAY					/* id = ANY (array of text) */
} PsIdMode;

/* one filter the API applies: name=value in the query string */
typedef struct PsParam
{
	char	   *name;			/* "email__eq", ... */
	Oid			type;			/* the value's type */
	PsParamKind kind;
	Expr	   *expr;			/* the value, known when the scan starts */
	RestrictInfo *clause;		/* planning: the clause it comes from */
	struct ExprState *state;	/* execution: expr, ready to evaluate */
} PsParam;

/* what a scan asks of the API, decided at plan time */
typedef struct PsScanPlan
{
	List	   *params;			/* PsParam: the filters */
	PsIdMode	id_mode;		/* not PS_ID_NONE: an id lookup, no filter */
	Expr	   *id_expr;		/* the id(s), evaluated per scan */
	RestrictInfo *id_clause;	/* the clause id_expr comes from */
	List	   *pushed;			/* RestrictInfos sent to the API */
} PsScanPlan;

/*
 * How a caller of ps_deparse_queries obtains a parameter's value: sets
 * *value and *isnull (PS_VALUE_DATUM), or sets *shown to text that stands
 * for a value known only later (PS_VALUE_SHOWN, for EXPLAIN), or leaves the
 * parameter out of the query (PS_VALUE_UNKNOWN, a plan-time estimate).
 */
typedef enum PsValueSource
{
	PS_VALUE_DATUM,
	PS_VALUE_SHOWN,
	PS_VALUE_UNKNOWN
} PsValueSource;

typedef PsValueSource (*PsParamValueFn) (PsParam *param, void *arg, Datum *value,
										 bool *isnull, char **shown);

extern void ps_plan_pushdown(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
							 List *conds, PsScanPlan *plan);
extern bool ps_join_clause_pushable(PlannerInfo *root, RelOptInfo *baserel,
									PsTable *t, RestrictInfo *ri);
extern char *ps_plan_sort(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
						  List **pathkeys);
extern char *ps_format_value(Datum value, Oid typid);
extern bool ps_append_param(StringInfo qs, const char *name, Datum value,
							bool isnull, Oid typid, int kind);
extern List *ps_deparse_queries(List *params, PsParamValueFn value_of, void *arg,
								const char *sort, int max_len, List **sent);
extern List *ps_fetchable_ids(Datum value, PsIdMode mode);

/* ----------------------------------------------------------------
 * modify.c -- INSERT and UPDATE
 * ----------------------------------------------------------------
 */
struct FdwRoutine;
struct ForeignScanState;
extern void ps_modify_routines(struct FdwRoutine *routine,
							   bool (*pages_list) (struct ForeignScanState *fss));

/* write_queue.c -- one write, sent now or queued until commit */
typedef struct PsWrite
{
	Oid			serverid;
	Oid			userid;
	const PsWriteSpec *spec;
	char	   *path;			/* with the id */
	char	   *body;			/* JSON, or NULL */
	char	   *label;			/* "row 3 of INSERT into \"subscribers\"" */
	bool		skip_conflicts; /* ON CONFLICT DO NOTHING */
	char	   *subjects;		/* the body's values under spec->subjects,
								 * each ended by a NUL (ps_write_subjects) */
	size_t		subjects_len;	/* bytes, NULs included */
} PsWrite;

/* the outcome of sending one write */
typedef enum PsWriteOutcome
{
	PS_WRITE_APPLIED,			/* answered 2xx */
	PS_WRITE_RECONCILED,		/* outcome unknown, then a conflict proved it
								 * applied */
	PS_WRITE_SKIPPED			/* a conflict, and ON CONFLICT DO NOTHING */
} PsWriteOutcome;

extern void ps_write_queue_init(void);
extern void ps_write_enqueue(PsWrite *w);
extern void ps_write_subjects(PsWrite *w, PsJson *body);
extern PsWriteOutcome ps_write_send(PsConn *conn, PsWrite *w, PsJson **result);
extern void ps_write_applied_now(const PsWrite *w);
extern void ps_write_rethrow(MemoryContext cxt);

/* ----------------------------------------------------------------
 * import.c
 * ----------------------------------------------------------------
 */
extern List *ps_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* ----------------------------------------------------------------
 * helpers shared by modules
 * ----------------------------------------------------------------
 */
extern char *ps_url_encode(const char *s);

/* ----------------------------------------------------------------
 * webhook.c, webhook_worker.c -- deliveries received and stored
 * ----------------------------------------------------------------
 */
/* the header that carries the shop's webhook token */
#define PS_SIGNATURE_HEADER "Postscript-Signature"

extern int	ps_webhook_port;
extern char *ps_webhook_listen_address;
extern char *ps_webhook_database;
extern char *ps_webhook_role;
extern char *ps_webhook_server;
extern int	ps_webhook_max_body;
extern double ps_webhook_rate_limit;

extern void ps_webhook_define_gucs(void);
extern void ps_webhook_init(void);
extern bool ps_webhook_too_large(size_t len);
extern bool ps_webhook_store(const char *server_name, const char *body, size_t len,
							 const char *signature, bool from_wire);

/* ratelimit.c */
typedef struct PsRateState PsRateState;
extern void ps_ratelimit_init(void);
extern void ps_ratelimit_conn_init(PsConn *conn);
extern double ps_ratelimit_try(PsConn *conn, uint64 *ticket, uint64 owner);
extern double ps_ratelimit_group_wait(PsConn *conn, int most, uint64 owner);
extern uint64 ps_ratelimit_wait(PsConn *conn, uint64 owner);
extern void ps_ratelimit_sent(PsConn *conn, uint64 ticket, double at);
extern void ps_ratelimit_answered(PsConn *conn, uint64 ticket, double rtt,
								  bool fresh);
extern void ps_ratelimit_throttled(PsConn *conn, double retry_after, double sent_at);
extern void ps_sleep_ms(double ms, uint32 wait_event);

#endif							/* POSTSCRIPT_FDW_H */
