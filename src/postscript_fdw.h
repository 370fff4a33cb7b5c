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
 *	src/http.c			HTTP requests: retries, concurrent pages, cancel, API errors
 *	src/ratelimit.c		the client-side rate limit, shared between backends
 *	src/json_conv.c		JSON values to Datums and back
 *	src/deparse.c		pushdown: WHERE/ORDER BY/LIMIT to query strings
 *	src/modify.c		INSERT/UPDATE/DELETE
 *	src/import.c		IMPORT FOREIGN SCHEMA
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

typedef struct PsColumnDef
{
	const char *name;			/* column name in IMPORT FOREIGN SCHEMA */
	const char *type;			/* its type there */
	const char *field;			/* JSON path, dotted; "$" = whole object */
	uint32		filter_ops;		/* PS_OP_* the list endpoint accepts */
	uint32		flags;			/* PS_COL_* */
	const char *body_key;		/* key in a write's body; NULL = not sent */
	const char *doc;			/* one line for the README */
} PsColumnDef;

/* what INSERT/UPDATE become; the request shapes live in modify.c */
typedef enum PsWriteKind
{
	PS_WRITE_NONE = 0,
	PS_WRITE_CREATE_SUBSCRIBER, /* POST subscribers */
	PS_WRITE_OPT_IN,			/* POST subscribers, keyword required */
	PS_WRITE_UNSUBSCRIBE,		/* PATCH compliance/unsubscribe */
	PS_WRITE_EVENT,				/* POST events */
	PS_WRITE_PATCH_SUBSCRIBER	/* PATCH subscribers/{id} */
} PsWriteKind;

typedef struct PsResource
{
	const char *name;			/* resource option value and table name */
	const char *path;			/* list (or object) endpoint */
	const char *records_key;	/* array key in a list response; NULL: the
								 * response is the one record */
	bool		paginated;		/* page=N with page_info.total_pages */
	bool		readable;		/* false: write-only (events) */
	bool		documented;		/* in Postscript's public reference (part A) */
	PsWriteKind insert_kind;
	const char *insert_method;
	const char *insert_path;
	PsWriteKind update_kind;
	const char *update_method;
	const char *update_path;	/* with {id} */
	const char *delete_hint;	/* why DELETE is refused, and what instead */
	const PsColumnDef *columns;
	int			ncolumns;
	const char *doc;
} PsResource;

extern const PsResource ps_resources[];
extern const int ps_nresources;

extern const PsResource *ps_resource_by_name(const char *name);
extern const PsColumnDef *ps_column_by_name(const PsResource *res, const char *name);
extern const PsColumnDef *ps_column_by_field(const PsResource *res, const char *field);
extern char *ps_resource_names(void);

/* ----------------------------------------------------------------
 * options.c
 * ----------------------------------------------------------------
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
	int64		max_response_bytes;
	int			max_json_depth;
	bool		pushdown;
	bool		use_remote_estimate;
	int			page_size_estimate; /* rows per page assumed by the planner */
	int			batch_size;
	char	   *default_country;
	char	   *ca_file;
	int			progress_pages; /* NOTICE every N pages; 0 = never */
} PsServerOptions;

typedef struct PsUserOptions
{
	char	   *api_key;
	char	   *shop_token;
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
	int			conv;			/* PsConvKind, json_conv.c */
	Oid			elemtype;		/* arrays: element type */
	FmgrInfo	infunc;			/* type input function (generic path) */
	Oid			ioparam;
	FmgrInfo	elem_infunc;
	Oid			elem_ioparam;
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
	bool		pushdown;
	int			ncolumns;		/* live (non-dropped) columns */
	PsColumn   *columns;		/* by position; columns[i].attnum */
	int			natts;			/* tuple descriptor size */
	PsServerOptions *sopts;
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
	void	   *multi;			/* CURLM * */
	void	   *headers;		/* struct curl_slist *, with the secrets */
	bool		busy;			/* easy handle attached to multi */
	int			active_pipelines;	/* PsPipelines using multi: no rebuild */
	uint64		bucket_key;		/* hash of URL, key and token (ratelimit.c) */
	struct PsRateState *rate;	/* this connection's own limiter, used
								 * without the shared one (ratelimit.c) */
	PsConnStats stats;
} PsConn;

extern PsConn *ps_get_connection(Oid serverid, Oid userid);
extern double ps_now_seconds(void);
extern List *ps_all_connections(void);

/* request flags */
#define PS_HTTP_ALLOW_404	0x0001	/* return a 404 instead of raising it */
#define PS_HTTP_ALLOW_409	0x0002	/* return a 409 instead of raising it */
#define PS_HTTP_WRITE		0x0004	/* not idempotent: retry only when the
									 * request surely was not applied */
#define PS_HTTP_PARSE		0x0008	/* parse a 2xx body as it arrives, into
									 * json (body stays NULL) */

typedef struct PsHttpResult
{
	long		status;			/* HTTP status */
	char	   *body;			/* NUL-terminated, palloc'd */
	PsJson	   *json;			/* PS_HTTP_PARSE and 2xx: the parsed body,
								 * freed with the current memory context */
	size_t		len;
	bool		maybe_applied;	/* a write whose outcome is unknown */
	int			retries;		/* retries this request took */
} PsHttpResult;

/*
 * Perform one API request (path is under api_url and carries the query
 * string), retrying and rate limiting as the server options say; raises an
 * ERROR for any API failure not allowed by flags.
 */
extern void ps_http_request(PsConn *conn, const char *method, const char *path,
							const char *body, int flags, PsHttpResult *result);

/*
 * GETs in flight concurrently on the connection's multi handle (the next
 * pages of a scan): queued in order, each started as soon as the rate
 * limit lets it, each body parsed as it arrives, results taken in order;
 * a result's json is set only for a 2xx answer holding one complete JSON
 * value, any other outcome is for the caller to repeat with
 * ps_http_request().  At most size requests queued and not taken.
 */
typedef struct PsPipeline PsPipeline;
extern PsPipeline *ps_pipeline_create(PsConn *conn, int size);
extern void ps_pipeline_add(PsPipeline *p, const char *path);
extern int	ps_pipeline_pending(PsPipeline *p);
extern void ps_pipeline_next(PsPipeline *p, PsHttpResult *res);

/* the API's message out of any of its three error body shapes (or NULL) */
extern char *ps_api_error_message(const char *body, size_t len);

/* parse a response body; the result is freed with the current memory
 * context (a reset callback), raises on malformed JSON */
extern PsJson *ps_parse_json(const char *body, size_t len, int max_depth,
								  const char *method, const char *path);

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
	PS_CONV_JSONB,
	PS_CONV_JSON,
	PS_CONV_ARRAY				/* JSON array to a PostgreSQL array */
} PsConvKind;

extern void ps_column_prepare(PsColumn *col);
extern PsJson *ps_json_lookup(PsJson *obj, PsColumn *col);
extern Datum ps_json_to_datum(PsJson *val, PsColumn *col, bool *isnull);
extern void ps_record_to_values(PsTable *t, PsJson *rec, Datum *values,
								bool *nulls, Bitmapset *attrs_used);
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
	PS_PARAM_LIKE = 2			/* a LIKE pattern; sent if it is '%literal%' */
} PsParamKind;

/* what a scan asks of the API, decided at plan time */
typedef struct PsScanPlan
{
	List	   *param_names;	/* String: "email__eq", ... */
	List	   *param_types;	/* OID: the value's type */
	List	   *param_arrays;	/* int: PsParamKind */
	List	   *param_exprs;	/* Expr: the values, evaluated per scan */
	Expr	   *id_expr;		/* id = x / id = ANY(x): GET {path}/{id} */
	bool		id_is_array;
	RestrictInfo *id_clause;	/* the clause id_expr comes from */
	List	   *pushed;			/* RestrictInfos sent to the API */
} PsScanPlan;

extern void ps_plan_pushdown(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
							 List *conds, PsScanPlan *plan);
extern bool ps_join_clause_pushable(PlannerInfo *root, RelOptInfo *baserel,
									PsTable *t, RestrictInfo *ri);
extern char *ps_plan_sort(PlannerInfo *root, RelOptInfo *baserel, PsTable *t,
						  List **pathkeys);
extern char *ps_format_value(Datum value, Oid typid);
extern bool ps_append_param(StringInfo qs, const char *name, Datum value,
							bool isnull, Oid typid, int kind);

/* ----------------------------------------------------------------
 * modify.c -- INSERT and UPDATE
 * ----------------------------------------------------------------
 */
struct FdwRoutine;
extern void ps_modify_routines(struct FdwRoutine *routine);

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

/* ratelimit.c */
typedef struct PsRateState PsRateState;
extern void ps_ratelimit_init(void);
extern void ps_ratelimit_conn_init(PsConn *conn);
extern double ps_ratelimit_try(PsConn *conn, uint64 *ticket);
extern uint64 ps_ratelimit_wait(PsConn *conn);
extern void ps_ratelimit_sent(PsConn *conn, uint64 ticket);
extern void ps_ratelimit_throttled(PsConn *conn, double retry_after, double sent_at);
extern void ps_sleep_ms(double ms);

#endif							/* POSTSCRIPT_FDW_H */
