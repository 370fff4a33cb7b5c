/*-------------------------------------------------------------------------
 *
 * webhook.c
 *		Webhook deliveries from Postscript, verified and stored as rows.
 *
 * Postscript POSTs an envelope {webhook_id, resource_type, resource_id,
 * event_time, event, event_data} to a callback, at least once, with a static
 * Postscript-Signature header equal to the shop's webhook token.  The one
 * function here, ps_webhook_store(), verifies that header against the
 * webhook_token option of the caller's user mapping (constant time), checks
 * the size and shape of the body and stores the event once in
 * postscript_fdw_webhook_events, however often and in whatever order it is
 * delivered.  Both ways in use it: the SQL function
 * postscript_fdw_webhook_receive() (for webhooks terminated elsewhere) and
 * the receiver worker (webhook_worker.c), which turns the SQLSTATE of a
 * refusal into an HTTP status.
 *
 * The GUCs of the receiver are defined here too: the body-size cap applies
 * to both ways in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "postscript_fdw.h"

#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(postscript_fdw_webhook_receive);
PG_FUNCTION_INFO_V1(postscript_fdw_webhook_fetch_token);
PG_FUNCTION_INFO_V1(postscript_fdw_webhook_timestamp);

/* GUCs (documented in docs/webhooks.md) */
int			ps_webhook_port = 0;
char	   *ps_webhook_listen_address = NULL;
char	   *ps_webhook_database = NULL;
char	   *ps_webhook_role = NULL;
char	   *ps_webhook_server = NULL;
int			ps_webhook_max_body = 256 * 1024;
double		ps_webhook_rate_limit = 100.0;

void
ps_webhook_define_gucs(void)
{
	/*
	 * The receiver's start-up settings exist only when the library is
	 * preloaded: PostgreSQL refuses (FATAL) to create PGC_POSTMASTER
	 * settings any later, and without the preload there is no receiver.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("postscript_fdw.webhook_port",
								"TCP port of the webhook receiver; 0 starts no receiver.",
								NULL, &ps_webhook_port, 0, 0, 65535,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("postscript_fdw.webhook_listen_address",
								   "Numeric IP address the webhook receiver listens on.",
								   "Loopback by default: put a TLS reverse proxy in front.",
								   &ps_webhook_listen_address, "127.0.0.1",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("postscript_fdw.webhook_database",
								   "Database the webhook receiver stores events in.",
								   NULL, &ps_webhook_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
		DefineCustomStringVariable("postscript_fdw.webhook_role",
								   "Role the webhook receiver connects as; empty: the bootstrap superuser.",
								   NULL, &ps_webhook_role, "",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
	DefineCustomStringVariable("postscript_fdw.webhook_server",
							   "Foreign server whose user mapping for the receiver's role holds webhook_token.",
							   NULL, &ps_webhook_server, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("postscript_fdw.webhook_max_body",
							"Largest webhook delivery accepted.",
							NULL, &ps_webhook_max_body, 256 * 1024, 1024, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomRealVariable("postscript_fdw.webhook_rate_limit",
							 "Deliveries per second the receiver accepts before answering 429; 0 = no limit.",
							 NULL, &ps_webhook_rate_limit, 100.0, 0.0, 1000000.0,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
}

/*
 * Equal secrets, in time that depends on neither: both are hashed first, so
 * that not even the length of the token leaks through the comparison.
 */
static bool
ps_secret_equal(const char *a, const char *b)
{
	uint8		ha[PG_SHA256_DIGEST_LENGTH];
	uint8		hb[PG_SHA256_DIGEST_LENGTH];
	const char *in[2] = {a, b};
	uint8	   *out[2] = {ha, hb};
	uint8		diff = 0;

	for (int i = 0; i < 2; i++)
	{
		pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

		if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
			pg_cryptohash_update(ctx, (const uint8 *) in[i], strlen(in[i])) < 0 ||
			pg_cryptohash_final(ctx, out[i], PG_SHA256_DIGEST_LENGTH) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not compute a SHA-256 digest: %s",
							pg_cryptohash_error(ctx))));
		pg_cryptohash_free(ctx);
	}
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		diff |= ha[i] ^ hb[i];
	return diff == 0;
}

bool
ps_webhook_too_large(size_t len)
{
	return len > (size_t) ps_webhook_max_body;
}

/* raises the refusal of a body above postscript_fdw.webhook_max_body */
static void
ps_webhook_check_size(size_t len)
{
	if (ps_webhook_too_large(len))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("webhook delivery of %zu bytes is larger than postscript_fdw.webhook_max_body (%d bytes)",
						len, ps_webhook_max_body),
				 errhint("Webhook events are small; raise postscript_fdw.webhook_max_body if yours are not.")));
}

/*
 * The longest dedupe_key kept as written.  The key is the primary key of
 * postscript_fdw_webhook_events, and a btree takes entries of at most about
 * 2.7 kB (less than that even compressed, for random bytes): a longer one,
 * from an event_data.id or event_time of a few kB, could never be stored and
 * would be refused on every retry.  A longer key is replaced by its SHA-256,
 * which identifies the event as well; shorter ones -- every key of a real
 * Postscript event -- stay readable and equal to the keys of rows stored
 * before.
 */
#define PS_WEBHOOK_MAX_KEY 512

/*
 * The longest event name accepted: postscript_fdw_webhook_events is indexed
 * on it (the views select by it), and Postscript's names are short dotted
 * ones ("shop.subscriber.opt_in").  A longer one is refused as no Postscript
 * event rather than left to fail the index, which no retry would mend.
 */
#define PS_WEBHOOK_MAX_EVENT 255

/* the token the deliveries must carry: the user mapping's webhook_token */
static char *
ps_webhook_token(const char *server_name)
{
	ForeignServer *server = GetForeignServerByName(server_name, false);
	AclResult	aclresult;
	PsUserOptions *uopts;

	aclresult = ps_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);

	uopts = ps_get_user_options(ps_get_user_mapping(GetUserId(), server->serverid));
	if (uopts->webhook_token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the user mapping for server \"%s\" has no webhook_token", server->servername),
				 errdetail("Deliveries are verified against the shop's webhook token, kept in the user mapping."),
				 errhint("Fetch it with GET /api/v2/webhooks/token and set it with ALTER USER MAPPING ... OPTIONS (ADD webhook_token '...').")));
	return uopts->webhook_token;
}

/* the schema the extension lives in, quoted (it is relocatable) */
static char *
ps_extension_schema(void)
{
	char	   *schema;

	if (SPI_execute("SELECT e.extnamespace::pg_catalog.regnamespace::pg_catalog.text"
					"  FROM pg_catalog.pg_extension e WHERE e.extname = 'postscript_fdw'",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"postscript_fdw\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Webhook events are stored in the extension's table: CREATE EXTENSION postscript_fdw there.")));
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	Assert(schema != NULL);
	return schema;
}

/*
 * Refuses an "event" longer than PS_WEBHOOK_MAX_EVENT, with the same message
 * as any other body that is no event (22023: 400 in the receiver): what is
 * wrong is the body, and the sender is told so, not asked to retry.
 */
static void
ps_webhook_check_event_name(Jsonb *payload)
{
	JsonbValue *event;

	if (!JB_ROOT_IS_OBJECT(payload))
		return;
	event = getKeyJsonValueFromContainer(&payload->root, "event", strlen("event"), NULL);
	if (event != NULL && event->type == jbvString &&
		event->val.string.len > PS_WEBHOOK_MAX_EVENT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook delivery is not a Postscript event"),
				 errdetail("Its \"event\" is %d bytes long; an event name has at most %d.",
						   event->val.string.len, PS_WEBHOOK_MAX_EVENT)));
}

/*
 * Verify and store one delivery; true if the event is new, false if it was
 * stored before (a duplicate: the sender is answered as for a new one).
 * A body from_wire is the HTTP request's bytes, UTF-8 as JSON is on the
 * wire: it is checked and converted to the database's encoding (22021 for
 * bytes that are no UTF-8); otherwise it is text already.
 * Raises, by SQLSTATE class, what is wrong: 28000 no signature, 28P01 wrong
 * signature, 54000 too large, 22xxx malformed, anything else a failure to
 * store that a later retry may not meet.  Runs in the caller's transaction.
 *
 * An event is identified by its type (shop.shop.email_collected is
 * shop.email_collected), event_data.id and event_time; without
 * event_data.id, by a SHA-256 of event_time and event_data.  The time is in
 * it because event_data.id may be a subscriber's, whom a later opt-in names
 * again; Postscript does not document whether a retry repeats the first
 * attempt's event_time (assumed, and what a stamp anew would cause:
 * docs/webhooks.md).  That identity is the dedupe_key, as a JSON array, or its
 * SHA-256 when longer than PS_WEBHOOK_MAX_KEY.  Unknown event types are
 * stored like the others.
 */
bool
ps_webhook_store(const char *server_name, const char *body, size_t len,
				 const char *signature, bool from_wire)
{
	char	   *token;
	char	   *schema;
	StringInfoData sql;
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1];
	bool		isnull;
	bool		inserted;
	int			nestlevel;

	if (signature == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("webhook delivery has no " PS_SIGNATURE_HEADER " header"),
				 errdetail("Postscript signs every delivery with the shop's webhook token.")));
	ps_webhook_check_size(len);

	/* before the body is looked at: a refusal of its content is a signed one */
	token = ps_webhook_token(server_name);
	if (!ps_secret_equal(signature, token))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PASSWORD),
				 errmsg(PS_SIGNATURE_HEADER " does not match the webhook token of server \"%s\"",
						server_name),
				 errhint("The token is the one GET /api/v2/webhooks/token answers; it changes when Postscript rotates it.")));
	if (memchr(body, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("webhook delivery contains a NUL byte")));

	/* parsed here, so that a malformed body's error is about the body */
	if (from_wire)
	{
		body = pg_any_to_server(body, (int) len, PG_UTF8);
		len = strlen(body);
	}
	args[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(body, len)));
	ps_webhook_check_event_name(DatumGetJsonbP(args[0]));

	/*
	 * The statements below name functions and operators without a schema,
	 * and run as a superuser in the receiver: only pg_catalog may resolve
	 * them, not a function or operator that a role with CREATE on a schema
	 * of the caller's search_path (set by ALTER DATABASE or ROLE for the
	 * receiver) could plant there with a closer or equal signature.  Set
	 * before the first of them.
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	schema = ps_extension_schema();

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.postscript_fdw_webhook_events AS e"
					 " (dedupe_key, event, event_id, event_time, webhook_id, resource_id, event_data, payload)"
					 " SELECT CASE WHEN octet_length(k) <= %d THEN k"
					 "   ELSE 'sha256:' || encode(sha256(convert_to(k, 'UTF8')), 'hex') END,"
					 "  p->>'event', d->>'id', %s.postscript_fdw_webhook_timestamp(p->>'event_time'),"
					 "  p->>'webhook_id', p->>'resource_id', d, p"
					 " FROM (SELECT $1 AS p) s,"
					 "  LATERAL (SELECT p->'event_data' AS d,"
					 "   CASE p->>'event' WHEN 'shop.shop.email_collected' THEN 'shop.email_collected'"
					 "    ELSE p->>'event' END AS ev) x,"
					 "  LATERAL (SELECT CASE WHEN jsonb_typeof(d->'id') IN ('string', 'number')"
					 "   THEN jsonb_build_array(ev, d->'id', p->'event_time')"
					 "   ELSE jsonb_build_array(ev, 'sha256:' || encode(sha256(convert_to("
					 "     jsonb_build_array(p->'event_time', d)::text, 'UTF8')), 'hex')) END::text AS k) y"
					 " WHERE jsonb_typeof(p->'event') = 'string' AND jsonb_typeof(d) = 'object'"
					 " ON CONFLICT (dedupe_key) DO UPDATE"
					 "  SET deliveries = e.deliveries + 1, last_received_at = now()"
					 " RETURNING e.deliveries = 1",
					 schema, PS_WEBHOOK_MAX_KEY, schema);
	if (SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, false, 1) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "SPI_execute_with_args failed");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook delivery is not a Postscript event"),
				 errdetail("A delivery is a JSON object with a string \"event\" and an object \"event_data\".")));
	inserted = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	Assert(!isnull);
	AtEOXact_GUC(true, nestlevel);
	SPI_finish();
	return inserted;
}

/* the form headers are passed in, for the hints of their refusals */
#define PS_HEADERS_HINT "Pass the request's headers as {\"Postscript-Signature\": \"...\", ...}."

/*
 * Raises 22004 for a NULL argument argno (named argname) of the SQL function
 * func.  The functions that call this are not STRICT: STRICT answers NULL
 * without a word, which a caller may take for a delivery stored or a token
 * kept.
 */
static void
ps_webhook_arg_not_null(FunctionCallInfo fcinfo, int argno, const char *func,
						const char *argname, const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" of %s() must not be null", argname, func),
				 errhint("%s", hint)));
}

/*
 * postscript_fdw_webhook_receive(server name, body text, headers jsonb):
 * the receiver for deliveries that arrive elsewhere (an edge function, a
 * queue consumer); headers is a JSON object of the request's headers, whose
 * names are matched without regard to case.
 */
Datum
postscript_fdw_webhook_receive(PG_FUNCTION_ARGS)
{
	const char *func = "postscript_fdw_webhook_receive";
	Name		server;
	text	   *body;
	Jsonb	   *headers;
	char	   *signature = NULL;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken r;

	ps_webhook_arg_not_null(fcinfo, 0, func, "server",
							"Name the foreign server whose user mapping holds webhook_token.");
	ps_webhook_arg_not_null(fcinfo, 1, func, "body",
							"Pass the request's body as it arrived.");
	ps_webhook_arg_not_null(fcinfo, 2, func, "headers", PS_HEADERS_HINT);
	server = PG_GETARG_NAME(0);
	body = PG_GETARG_TEXT_PP(1);
	headers = PG_GETARG_JSONB_P(2);

	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errhint(PS_HEADERS_HINT)));

	it = JsonbIteratorInit(&headers->root);
	while ((r = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		match;

		if (r != WJB_KEY)
			continue;
		match = v.val.string.len == strlen(PS_SIGNATURE_HEADER) &&
			pg_strncasecmp(v.val.string.val, PS_SIGNATURE_HEADER, v.val.string.len) == 0;
		r = JsonbIteratorNext(&it, &v, true);
		Assert(r == WJB_VALUE);
		if (match && v.type == jbvString)
			signature = pnstrdup(v.val.string.val, v.val.string.len);
	}

	PG_RETURN_BOOL(ps_webhook_store(NameStr(*server), VARDATA_ANY(body),
									VARSIZE_ANY_EXHDR(body), signature, false));
}

/*
 * postscript_fdw_webhook_fetch_token(server name, role name): GET
 * /api/v2/webhooks/token with the caller's credentials and keep the answer
 * as the webhook_token of role's user mapping for the server, without the
 * token passing through a shell, a client or a statement's text (the
 * option is set with a parse tree, not SQL, so no error context can show
 * it).  The usual rules of ALTER USER MAPPING apply.
 */
Datum
postscript_fdw_webhook_fetch_token(PG_FUNCTION_ARGS)
{
	const char *func = "postscript_fdw_webhook_fetch_token";
	char	   *server_name;
	char	   *role_name;
	ForeignServer *server;
	Oid			roleid;
	const char *path = "/api/v2/webhooks/token";
	PsHttpResult res;
	PsJson	   *token;
	UserMapping *um;
	AlterUserMappingStmt *stmt;
	DefElemAction action = DEFELEM_ADD;
	PsConn	   *conn;
	PsJson	   *answer;

	ps_webhook_arg_not_null(fcinfo, 0, func, "server",
							"Name the foreign server the token is for.");
	ps_webhook_arg_not_null(fcinfo, 1, func, "role",
							"Name the role whose user mapping keeps the token, or leave the argument out for the current user.");
	server_name = NameStr(*PG_GETARG_NAME(0));
	role_name = NameStr(*PG_GETARG_NAME(1));
	server = GetForeignServerByName(server_name, false);
	roleid = get_role_oid(role_name, false);

	/*
	 * Who may change role's mapping (ALTER USER MAPPING's rule: the server's
	 * owner, or role itself with USAGE on it), and that role has a mapping
	 * of its own, are settled before anything is sent.
	 */
	if (!ps_server_ownercheck(server->serverid, GetUserId()))
	{
		AclResult	aclresult = ACLCHECK_NOT_OWNER;

		if (roleid == GetUserId())
			aclresult = ps_server_aclcheck(server->serverid, roleid, ACL_USAGE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	}
	if (!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(roleid),
							   ObjectIdGetDatum(server->serverid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" has no user mapping of its own on server \"%s\"",
						role_name, server->servername),
				 errdetail("The webhook token is kept in the role's own mapping, not in the one for PUBLIC."),
				 errhint("Create one: CREATE USER MAPPING FOR %s SERVER %s OPTIONS (api_key '...');",
						 quote_identifier(role_name), quote_identifier(server->servername))));

	conn = ps_get_connection(server->serverid, GetUserId());
	ps_http_request(conn, "GET", path, NULL, 0, &res);
	answer = ps_parse_json(res.body, res.len, conn->opts->max_json_depth,
						   conn->server_name, "GET", path);
	if (!json_object_is_type(answer, json_type_object) ||
		!json_object_object_get_ex(answer, "token", &token) ||
		!json_object_is_type(token, json_type_string) ||
		json_object_get_string_len(token) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("GET %s answered no token", path),
				 errdetail("The answer is a JSON object with a non-empty string \"token\".")));

	/* SET if role's own mapping has one already, else ADD */
	um = ps_get_user_mapping(roleid, server->serverid);
	if (ps_get_user_options(um)->webhook_token != NULL)
		action = DEFELEM_SET;

	stmt = makeNode(AlterUserMappingStmt);
	stmt->user = makeNode(RoleSpec);
	stmt->user->roletype = ROLESPEC_CSTRING;
	stmt->user->rolename = role_name;
	stmt->user->location = -1;
	stmt->servername = server->servername;
	stmt->options = list_make1(makeDefElemExtended(NULL, "webhook_token",
												   (Node *) makeString(pstrdup(json_object_get_string(token))),
												   action, -1));
	AlterUserMapping(stmt);
	PG_RETURN_VOID();
}

/*
 * postscript_fdw_webhook_timestamp(text): an ISO 8601 time as Postscript
 * sends them (no zone: UTC), read by the FDW's own parser; NULL for
 * anything else, so that the views never fail on a hostile value.
 */
Datum
postscript_fdw_webhook_timestamp(PG_FUNCTION_ARGS)
{
	text	   *value = PG_GETARG_TEXT_PP(0);
	int64		ts;

	if (!ps_parse_iso8601(VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &ts))
		PG_RETURN_NULL();
	PG_RETURN_TIMESTAMPTZ(ts);
}
