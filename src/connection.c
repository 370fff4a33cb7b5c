/*-------------------------------------------------------------------------
 *
 * connection.c
 *		Per-backend cache of API connections, one per user mapping.
 *
 * A PsConn owns a libcurl easy handle (whose connection cache keeps the
 * HTTP connection alive across requests and queries), the request headers
 * that carry the credentials, the rate-limit bucket and the counters.  It
 * is rebuilt when its server or user mapping changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <time.h>

#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "miscadmin.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "postscript_fdw.h"

static HTAB *ConnectionHash = NULL;
static bool curl_initialized = false;

double
ps_now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	PsConn	   *conn;

	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && conn->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID && conn->mapping_hashvalue == hashvalue))
			conn->invalidated = true;
	}
}

static void
release_conn(PsConn *conn)
{
	if (conn->multi && conn->easy && conn->busy)
		curl_multi_remove_handle(conn->multi, conn->easy);
	conn->busy = false;
	if (conn->easy)
		curl_easy_cleanup(conn->easy);
	if (conn->multi)
		curl_multi_cleanup(conn->multi);
	if (conn->headers)
		curl_slist_free_all(conn->headers);
	conn->easy = conn->multi = conn->headers = NULL;
	conn->multi_state = NULL;
	if (conn->cxt)
		MemoryContextDelete(conn->cxt);
	conn->cxt = NULL;
}

static void
append_header(PsConn *conn, const char *name, const char *value)
{
	char	   *line = psprintf("%s: %s", name, value);
	struct curl_slist *l = curl_slist_append(conn->headers, line);

	/* the line may hold a secret: wipe our copy, curl keeps its own */
	explicit_bzero(line, strlen(line));
	pfree(line);
	if (l == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	conn->headers = l;
}

static void
build_conn(PsConn *conn, Oid serverid, Oid userid)
{
	ForeignServer *server = GetForeignServer(serverid);
	UserMapping *um = GetUserMapping(userid, serverid);
	PsUserOptions *uopts;
	MemoryContext old;

	conn->serverid = serverid;
	conn->userid = userid;
	conn->cxt = AllocSetContextCreate(TopMemoryContext, "postscript_fdw connection",
									  ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(conn->cxt);
	conn->server_name = pstrdup(server->servername);
	conn->opts = ps_get_server_options(server);
	uopts = ps_get_user_options(um);
	MemoryContextSwitchTo(old);

	if (uopts->api_key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for server \"%s\" has no api_key", server->servername),
				 errhint("ALTER USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (ADD api_key 'sk_...').",
						 server->servername)));

	conn->server_hashvalue = GetSysCacheHashValue1(FOREIGNSERVEROID,
												   ObjectIdGetDatum(serverid));
	conn->mapping_hashvalue = GetSysCacheHashValue1(USERMAPPINGOID,
													ObjectIdGetDatum(um->umid));

	conn->easy = curl_easy_init();
	ps_http_multi_init(conn);
	if (conn->easy == NULL || conn->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not initialize libcurl")));

	{
		char	   *cred = psprintf("%s%c%s%c%s", conn->opts->api_url, 0, uopts->api_key, 0,
									uopts->shop_token ? uopts->shop_token : "");
		size_t		len = strlen(conn->opts->api_url) + strlen(uopts->api_key) + 2 +
			(uopts->shop_token ? strlen(uopts->shop_token) : 0);

		conn->bucket_key = hash_bytes_extended((const unsigned char *) cred, (int) len, 0);
		explicit_bzero(cred, len);
		pfree(cred);
	}
	{
		char	   *auth = psprintf("Bearer %s", uopts->api_key);

		append_header(conn, "Authorization", auth);
		explicit_bzero(auth, strlen(auth));
	}
	if (uopts->shop_token)
		append_header(conn, "X-Postscript-Shop-Token", uopts->shop_token);
	explicit_bzero(uopts->api_key, strlen(uopts->api_key));
	if (uopts->shop_token)
		explicit_bzero(uopts->shop_token, strlen(uopts->shop_token));
	append_header(conn, "Accept", "application/json");
	append_header(conn, "User-Agent", "postscript_fdw/1.0");
	/* the one compression http.c decodes (libdeflate, whole bodies) */
	append_header(conn, "Accept-Encoding", "gzip");
	/* no "Expect: 100-continue" round trip before bodies */
	append_header(conn, "Expect", "");

	ps_ratelimit_conn_init(conn);
	conn->invalidated = false;
}

/*
 * The user mapping that applies: the role's own, else the one for PUBLIC.
 * Without either, an error that says what to create (PostgreSQL's own
 * message names neither the server nor the remedy).
 */
UserMapping *
ps_get_user_mapping(Oid userid, Oid serverid)
{
	if (!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
							   ObjectIdGetDatum(serverid)) &&
		!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							   ObjectIdGetDatum(serverid)))
	{
		ForeignServer *server = GetForeignServerExtended(serverid, FSV_MISSING_OK);
		const char *role = GetUserNameFromId(userid, false);

		/* DROP SERVER ... CASCADE dropped its user mappings too */
		if (server == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("the foreign server of this request no longer exists"),
					 errdetail("The server with OID %u was dropped after a statement of this transaction used it.",
							   serverid),
					 errhint("Nothing more is sent to it.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no user mapping for role \"%s\" on server \"%s\"",
						role, server->servername),
				 errdetail("postscript_fdw takes the Postscript API key from the user mapping."),
				 errhint("Create one: CREATE USER MAPPING FOR %s SERVER %s OPTIONS (api_key '...'); or one FOR PUBLIC.",
						 quote_identifier(role), quote_identifier(server->servername))));
	}
	return GetUserMapping(userid, serverid);
}

/*
 * The connection for the current user on a server, built on first use.
 */
PsConn *
ps_get_connection(Oid serverid, Oid userid)
{
	UserMapping *um;
	PsConn	   *conn;
	bool		found;

	if (!curl_initialized)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not initialize libcurl")));
		curl_initialized = true;
	}
	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(PsConn);
		ConnectionHash = hash_create("postscript_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, inval_callback, (Datum) 0);
	}

	um = ps_get_user_mapping(userid, serverid);

	conn = hash_search(ConnectionHash, &um->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) conn) + sizeof(Oid), 0, sizeof(PsConn) - sizeof(Oid));
		conn->invalidated = true;
	}
	/* a scan still fetching pages on this connection keeps it until done */
	if (conn->invalidated && conn->active_pipelines == 0)
	{
		PsConnStats keep = conn->stats;

		release_conn(conn);
		PG_TRY();
		{
			build_conn(conn, serverid, userid);
		}
		PG_CATCH();
		{
			release_conn(conn);
			conn->invalidated = true;
			PG_RE_THROW();
		}
		PG_END_TRY();
		conn->stats = keep;
	}
	return conn;
}

/*
 * Stats of every connection this backend has, for postscript_fdw_stats().
 */
List *
ps_all_connections(void)
{
	HASH_SEQ_STATUS scan;
	PsConn	   *conn;
	List	   *result = NIL;

	if (ConnectionHash == NULL)
		return NIL;
	hash_seq_init(&scan, ConnectionHash);
	while ((conn = hash_seq_search(&scan)) != NULL)
		if (conn->cxt != NULL)
			result = lappend(result, conn);
	return result;
}
