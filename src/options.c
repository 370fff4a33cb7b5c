/*-------------------------------------------------------------------------
 *
 * options.c
 *		Option validation (the FDW's validator function) and lookup.
 *
 * Every option the FDW knows is in one table below, with the catalog it
 * belongs in and how its value is checked; the validator, the error hints
 * and the lookups all read that table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <float.h>

#include <curl/curl.h>

#include "access/reloptions.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "postscript_fdw.h"

typedef enum PsOptKind
{
	OPT_STRING,
	OPT_URL,
	OPT_BOOL,
	OPT_INT,					/* integer >= min */
	OPT_SECONDS,				/* real number of seconds >= 0 */
	OPT_REAL,
	OPT_RESOURCE,
	OPT_PATH,
	OPT_SECRET,
	OPT_COUNTRY
} PsOptKind;

typedef struct PsOption
{
	const char *name;
	Oid			context;		/* catalog the option belongs in */
	PsOptKind	kind;
	double		min;
	double		max;
} PsOption;

static const PsOption ps_options[] = {
	/* server */
	{"api_url", ForeignServerRelationId, OPT_URL, 0, 0},
	{"connect_timeout", ForeignServerRelationId, OPT_SECONDS, 0.001, 3600},
	{"request_timeout", ForeignServerRelationId, OPT_SECONDS, 0.001, 86400},
	{"low_speed_time", ForeignServerRelationId, OPT_INT, 1, 3600},
	{"max_retries", ForeignServerRelationId, OPT_INT, 0, 100},
	{"max_retry_wait", ForeignServerRelationId, OPT_SECONDS, 0, 3600},
	{"rate_limit", ForeignServerRelationId, OPT_REAL, 0, 10000},
	{"rate_burst", ForeignServerRelationId, OPT_INT, 1, 10000},
	{"max_concurrency", ForeignServerRelationId, OPT_INT, 1, 64},
	{"shared_rate_limit", ForeignServerRelationId, OPT_BOOL, 0, 0},
	{"max_response_size", ForeignServerRelationId, OPT_INT, 1024, 1073741823},
	{"max_json_depth", ForeignServerRelationId, OPT_INT, 2, 10000},
	{"page_size_estimate", ForeignServerRelationId, OPT_INT, 1, 100000},
	{"default_country", ForeignServerRelationId, OPT_COUNTRY, 0, 0},
	{"ca_file", ForeignServerRelationId, OPT_STRING, 0, 0},
	{"progress_pages", ForeignServerRelationId, OPT_INT, 0, 1000000},
	/* server or table */
	{"pushdown", ForeignServerRelationId, OPT_BOOL, 0, 0},
	{"pushdown", ForeignTableRelationId, OPT_BOOL, 0, 0},
	{"use_remote_estimate", ForeignServerRelationId, OPT_BOOL, 0, 0},
	{"use_remote_estimate", ForeignTableRelationId, OPT_BOOL, 0, 0},
	{"batch_size", ForeignServerRelationId, OPT_INT, 1, 10000},
	{"batch_size", ForeignTableRelationId, OPT_INT, 1, 10000},
	{"send_at_commit", ForeignServerRelationId, OPT_BOOL, 0, 0},
	{"send_at_commit", ForeignTableRelationId, OPT_BOOL, 0, 0},
	/* table */
	{"resource", ForeignTableRelationId, OPT_RESOURCE, 0, 0},
	{"endpoint", ForeignTableRelationId, OPT_PATH, 0, 0},
	{"records_key", ForeignTableRelationId, OPT_STRING, 0, 0},
	{"paginated", ForeignTableRelationId, OPT_BOOL, 0, 0},
	/* user mapping */
	{"api_key", UserMappingRelationId, OPT_SECRET, 0, 0},
	{"shop_token", UserMappingRelationId, OPT_SECRET, 0, 0},
	{"webhook_token", UserMappingRelationId, OPT_SECRET, 0, 0},
	/* column */
	{"field", AttributeRelationId, OPT_STRING, 0, 0},
};

#define DEFAULT_API_URL "https://api.postscript.io"

static const char *
context_name(Oid context)
{
	switch (context)
	{
		case ForeignServerRelationId:
			return "a server";
		case ForeignTableRelationId:
			return "a foreign table";
		case UserMappingRelationId:
			return "a user mapping";
		case AttributeRelationId:
			return "a column";
		default:
			return "this object";
	}
}

static const PsOption *
find_option(const char *name, Oid context)
{
	for (int i = 0; i < lengthof(ps_options); i++)
		if (ps_options[i].context == context &&
			strcmp(ps_options[i].name, name) == 0)
			return &ps_options[i];
	return NULL;
}

/*
 * Whether host, as libcurl's URL parser gives it (an IPv6 address in
 * brackets), is localhost or a literal loopback address: 127.0.0.0/8 or ::1.
 * Addresses are compared, not strings: 127.example.com is a name like any
 * other.
 */
static bool
is_loopback_host(const char *host)
{
	unsigned char addr[sizeof(struct in6_addr)];
	size_t		len = strlen(host);

	if (pg_strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, addr) == 1)
		return addr[0] == 127;
	if (len > 2 && host[0] == '[' && host[len - 1] == ']')
	{
		char	   *inner = pnstrdup(host + 1, len - 2);
		bool		loopback = inet_pton(AF_INET6, inner, addr) == 1 &&
			IN6_IS_ADDR_LOOPBACK((struct in6_addr *) addr);

		pfree(inner);
		return loopback;
	}
	return false;
}

/* whether the URL that u holds has the part (user, query, ...) */
static bool
url_has(CURLU *u, CURLUPart part)
{
	char	   *value = NULL;
	bool		has = curl_url_get(u, part, &value, 0) == CURLUE_OK && value != NULL;

	curl_free(value);
	return has;
}

/*
 * api_url: http(s)://host[:port][/prefix], https unless the host is a
 * loopback address (the local server), no credentials, query or fragment.
 * libcurl's URL parser, the one that reads the URL when requests are sent,
 * says what the host is.
 */
static void
check_url(const char *name, const char *url)
{
	CURLU	   *u;
	char	   *host = NULL;
	bool		https;
	bool		malformed;
	bool		loopback;

	if (strncmp(url, "https://", 8) == 0)
		https = true;
	else if (strncmp(url, "http://", 7) == 0)
		https = false;
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("The URL must start with https://.")));

	u = curl_url();
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	malformed = strpbrk(url, "@?# \t\r\n") != NULL ||
		curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL ||
		host[0] == '\0' || url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_OPTIONS);
	loopback = !malformed && is_loopback_host(host);
	curl_free(host);
	curl_url_cleanup(u);

	if (malformed)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("The URL must be scheme://host[:port][/path], without credentials, query or fragment.")));
	if (!https && !loopback)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("Plain http is allowed only for loopback hosts (localhost, 127.0.0.0/8, [::1])."),
				 errhint("Use https:// so that the API key travels encrypted.")));
}

/*
 * Whether a postscript_fdw server (one whose wrapper has this validator)
 * already has api_url = url.  Only a superuser can have put it there, so a
 * non-superuser may reuse it: the owner of such a server can then change
 * its other options, and nobody can aim the database server anywhere new.
 */
static bool
url_in_use(const char *url, Oid validator)
{
	Relation	rel = table_open(ForeignServerRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	bool		found = false;

	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_foreign_server srv = (Form_pg_foreign_server) GETSTRUCT(tup);
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_foreign_server_srvoptions,
									 RelationGetDescr(rel), &isnull);
		ListCell   *lc;

		if (isnull || GetForeignDataWrapper(srv->srvfdw)->fdwvalidator != validator)
			continue;
		foreach(lc, untransformRelOptions(d))
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "api_url") == 0 &&
				strcmp(defGetString(def), url) == 0)
				found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

static void
check_option_value(const PsOption *opt, DefElem *def, Oid validator)
{
	const char *value = defGetString(def);

	switch (opt->kind)
	{
		case OPT_STRING:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			break;
		case OPT_URL:
			if (!superuser() && !url_in_use(value, validator))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser may set option \"%s\"", opt->name),
						 errdetail("The API URL decides which host the database server connects to."),
						 errhint("A non-superuser may use only a URL that a superuser already set on a postscript_fdw server.")));
			check_url(opt->name, value);
			break;
		case OPT_BOOL:
			(void) defGetBoolean(def);
			break;
		case OPT_INT:
		case OPT_SECONDS:
		case OPT_REAL:
			{
				char	   *end;
				double		d;

				errno = 0;
				d = strtod(value, &end);
				while (*end && isspace((unsigned char) *end))
					end++;
				if (errno != 0 || end == value || *end != '\0' ||
					(opt->kind == OPT_INT && d != (double) (int64) d) ||
					d < opt->min || d > opt->max)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
							 errdetail("It must be %s between %g and %g%s.",
									   opt->kind == OPT_INT ? "an integer" : "a number",
									   opt->min, opt->max,
									   opt->kind == OPT_SECONDS ? " (seconds)" : "")));
				/* a page is held while it is read: its cap bounds a backend's memory */
				if (strcmp(opt->name, "max_response_size") == 0 &&
					d > PS_MAX_RESPONSE_DEFAULT && !superuser())
					ereport(ERROR,
							(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							 errmsg("only a superuser may set option \"%s\" above %d bytes",
									opt->name, PS_MAX_RESPONSE_DEFAULT),
							 errdetail("What a scan holds in memory grows with the size of a response.")));
				break;
			}
		case OPT_RESOURCE:
			if (ps_resource_by_name(value) == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("unknown Postscript resource \"%s\"", value),
						 errhint("Valid resources are: %s.", ps_resource_names())));
			break;
		case OPT_PATH:
			if (value[0] != '/' || strpbrk(value, "?# \t\r\n") != NULL ||
				strstr(value, "..") != NULL || strstr(value, "//") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errdetail("An endpoint is a path under api_url, such as /api/v2/subscribers, without query string.")));
			break;
		case OPT_SECRET:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			if (strncmp(value, "pk_", 3) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" holds a public key", opt->name),
						 errdetail("Keys starting with pk_ are front-end keys and never authorize an API call."),
						 errhint("Use the shop's private API key (sk_...) from Postscript's API settings.")));
			if (strpbrk(value, "\r\n") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not contain line breaks", opt->name)));
			break;
		case OPT_COUNTRY:
			if (strlen(value) != 2 || !isalpha((unsigned char) value[0]) ||
				!isalpha((unsigned char) value[1]))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errdetail("It must be a two-letter ISO 3166 country code such as US or GB.")));
			break;
	}
}

static char *
valid_options(Oid context)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(ps_options); i++)
		if (ps_options[i].context == context)
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", ps_options[i].name);
	return buf.len ? buf.data : pstrdup("(none)");
}

PG_FUNCTION_INFO_V1(postscript_fdw_validator);

Datum
postscript_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const PsOption *opt = find_option(def->defname, catalog);

		if (opt == NULL)
		{
			if (catalog != UserMappingRelationId &&
				find_option(def->defname, UserMappingRelationId) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" is not allowed on %s",
								def->defname, context_name(catalog)),
						 errdetail("Credentials are kept only in user mappings, which only their user and superusers can read."),
						 errhint("Use CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (%s '...').",
								 def->defname)));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options on %s are: %s.",
							 context_name(catalog), valid_options(catalog))));
		}
		check_option_value(opt, def, fcinfo->flinfo->fn_oid);
	}

	/* per-table consistency */
	if (catalog == ForeignTableRelationId)
	{
		bool		has_resource = false;

		foreach(lc, options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "resource") == 0)
				has_resource = true;
		if (!has_resource)
		{
			foreach(lc, options)
			{
				DefElem    *def = (DefElem *) lfirst(lc);

				if (strcmp(def->defname, "endpoint") == 0 ||
					strcmp(def->defname, "records_key") == 0)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
							 errmsg("option \"%s\" needs option \"resource\"", def->defname),
							 errhint("Name the Postscript object the endpoint serves: %s.",
									 ps_resource_names())));
			}
		}
	}

	PG_RETURN_VOID();
}

/* ---------------------------------------------------------------- lookups */

static double
opt_real(DefElem *def)
{
	return strtod(defGetString(def), NULL);
}

PsServerOptions *
ps_get_server_options(ForeignServer *server)
{
	PsServerOptions *o = palloc0(sizeof(PsServerOptions));
	ListCell   *lc;

	o->api_url = DEFAULT_API_URL;
	o->connect_timeout_ms = 10000;
	o->request_timeout_ms = 60000;
	o->low_speed_time_s = 30;
	o->max_retries = 5;
	o->max_retry_wait_ms = 60000;
	o->rate_limit = 15;
	o->rate_burst = 5;
	o->max_concurrency = 4;
	o->shared_rate_limit = true;
	o->max_response_bytes = PS_MAX_RESPONSE_DEFAULT;
	o->max_json_depth = 64;
	o->pushdown = true;
	o->use_remote_estimate = false;
	o->page_size_estimate = 100;
	o->batch_size = 1;
	o->send_at_commit = true;
	o->default_country = "US";
	o->ca_file = NULL;
	o->progress_pages = 0;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const char *n = def->defname;

		if (strcmp(n, "api_url") == 0)
		{
			char	   *url = pstrdup(defGetString(def));
			size_t		len = strlen(url);

			while (len > 0 && url[len - 1] == '/')
				url[--len] = '\0';
			o->api_url = url;
		}
		else if (strcmp(n, "connect_timeout") == 0)
			o->connect_timeout_ms = (int) (opt_real(def) * 1000);
		else if (strcmp(n, "request_timeout") == 0)
			o->request_timeout_ms = (int) (opt_real(def) * 1000);
		else if (strcmp(n, "low_speed_time") == 0)
			o->low_speed_time_s = (int) opt_real(def);
		else if (strcmp(n, "max_retries") == 0)
			o->max_retries = (int) opt_real(def);
		else if (strcmp(n, "max_retry_wait") == 0)
			o->max_retry_wait_ms = (int) (opt_real(def) * 1000);
		else if (strcmp(n, "rate_limit") == 0)
			o->rate_limit = opt_real(def);
		else if (strcmp(n, "rate_burst") == 0)
			o->rate_burst = (int) opt_real(def);
		else if (strcmp(n, "max_concurrency") == 0)
			o->max_concurrency = (int) opt_real(def);
		else if (strcmp(n, "shared_rate_limit") == 0)
			o->shared_rate_limit = defGetBoolean(def);
		else if (strcmp(n, "max_response_size") == 0)
			o->max_response_bytes = (int64) opt_real(def);
		else if (strcmp(n, "max_json_depth") == 0)
			o->max_json_depth = (int) opt_real(def);
		else if (strcmp(n, "page_size_estimate") == 0)
			o->page_size_estimate = (int) opt_real(def);
		else if (strcmp(n, "default_country") == 0)
			o->default_country = pstrdup(defGetString(def));
		else if (strcmp(n, "ca_file") == 0)
			o->ca_file = pstrdup(defGetString(def));
		else if (strcmp(n, "progress_pages") == 0)
			o->progress_pages = (int) opt_real(def);
		else if (strcmp(n, "pushdown") == 0)
			o->pushdown = defGetBoolean(def);
		else if (strcmp(n, "use_remote_estimate") == 0)
			o->use_remote_estimate = defGetBoolean(def);
		else if (strcmp(n, "batch_size") == 0)
			o->batch_size = (int) opt_real(def);
		else if (strcmp(n, "send_at_commit") == 0)
			o->send_at_commit = defGetBoolean(def);
	}
	return o;
}

PsUserOptions *
ps_get_user_options(UserMapping *um)
{
	PsUserOptions *o = palloc0(sizeof(PsUserOptions));
	ListCell   *lc;

	foreach(lc, um->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "api_key") == 0)
			o->api_key = pstrdup(defGetString(def));
		else if (strcmp(def->defname, "shop_token") == 0)
			o->shop_token = pstrdup(defGetString(def));
		else if (strcmp(def->defname, "webhook_token") == 0)
			o->webhook_token = pstrdup(defGetString(def));
	}
	return o;
}

/*
 * Resolve a foreign table: its resource, endpoint, and for every column the
 * JSON field it reads (column option "field", else the descriptor column of
 * that name, else the column name itself) and how to convert it.
 */
PsTable *
ps_get_table(Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(ft->serverid);
	PsTable    *t = palloc0(sizeof(PsTable));
	const char *resource = NULL;
	int			paginated = -1;
	Relation	rel;
	TupleDesc	tupdesc;
	ListCell   *lc;

	t->relid = relid;
	t->relname = get_rel_name(relid);
	t->serverid = ft->serverid;
	t->sopts = ps_get_server_options(server);
	t->pushdown = t->sopts->pushdown;

	foreach(lc, ft->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "resource") == 0)
			resource = defGetString(def);
		else if (strcmp(def->defname, "endpoint") == 0)
			t->endpoint = pstrdup(defGetString(def));
		else if (strcmp(def->defname, "records_key") == 0)
			t->records_key = pstrdup(defGetString(def));
		else if (strcmp(def->defname, "paginated") == 0)
			paginated = defGetBoolean(def);
		else if (strcmp(def->defname, "pushdown") == 0)
			t->pushdown = defGetBoolean(def);
		else if (strcmp(def->defname, "use_remote_estimate") == 0)
			t->sopts->use_remote_estimate = defGetBoolean(def);
		else if (strcmp(def->defname, "batch_size") == 0)
			t->sopts->batch_size = (int) opt_real(def);
		else if (strcmp(def->defname, "send_at_commit") == 0)
			t->sopts->send_at_commit = defGetBoolean(def);
	}
	if (resource == NULL)
		resource = t->relname;
	t->res = ps_resource_by_name(resource);
	if (t->res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" does not name a Postscript resource", t->relname),
				 errhint("Add OPTIONS (resource '...') with one of: %s.", ps_resource_names())));
	if (t->endpoint == NULL)
		t->endpoint = pstrdup(t->res->path);
	if (t->records_key == NULL && t->res->records_key)
		t->records_key = pstrdup(t->res->records_key);
	t->paginated = paginated >= 0 ? (bool) paginated : t->res->paginated;

	rel = table_open(relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	t->natts = tupdesc->natts;
	t->columns = palloc0(sizeof(PsColumn) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		PsColumn   *col;
		List	   *colopts;
		char	   *field = NULL;

		if (att->attisdropped)
			continue;
		col = &t->columns[t->ncolumns++];
		col->attnum = att->attnum;
		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;

		colopts = GetForeignColumnOptions(relid, att->attnum);
		foreach(lc, colopts)
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, "field") == 0)
				field = pstrdup(defGetString(def));
		}
		if (field == NULL)
		{
			const PsColumnDef *d = ps_column_by_name(t->res, col->name);

			field = pstrdup(d ? d->field : col->name);
		}
		col->field = field;
		col->def = ps_column_by_field(t->res, field);
		ps_column_prepare(col);
	}
	table_close(rel, AccessShareLock);
	return t;
}

PsColumn *
ps_table_column(PsTable *t, AttrNumber attnum)
{
	for (int i = 0; i < t->ncolumns; i++)
		if (t->columns[i].attnum == attnum)
			return &t->columns[i];
	return NULL;
}
