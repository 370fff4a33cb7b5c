/*-------------------------------------------------------------------------
 *
 * options.c
 *		Options: their declarations, the FDW's validator, and their lookup.
 *
 * Every option is declared once, in ps_options[] below: its name, the
 * catalogs it may appear in, its kind (how a value is checked and in which
 * type and unit it is stored), its bounds, its default (text, parsed like a
 * user's value), the field it is stored in, and one line for the README.
 * One function parses a value, for the validator and for the lookups alike;
 * one loop applies a list of options to the structs they are stored in:
 * over the defaults a server's options, then a table's (which override the
 * server's where both may set one), as postgres_fdw's
 * apply_server_options() and apply_table_options() do.
 * postscript_fdw_options() shows the declarations to SQL: the README's
 * option tables are made from it (scripts/checks/options_documented.sh).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <float.h>
#include <math.h>

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
#include "catalog/pg_authid.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "postscript_fdw.h"
#include "phone.h"

/* how a value is checked, and the type and unit of the field it is stored in */
typedef enum PsOptKind
{
	OPT_STRING,					/* non-empty text: char * */
	OPT_URL,					/* http(s) URL: char *, no trailing slash;
								 * checked by the validator (check_url), and
								 * only a superuser may set one that no
								 * postscript_fdw server has yet */
	OPT_BOOL,					/* bool */
	OPT_INT,					/* integer in [min, max]: int */
	OPT_BYTES,					/* integer in [min, max]: int64 */
	OPT_SECONDS,				/* real number of seconds in [min, max]: int
								 * milliseconds */
	OPT_REAL,					/* real number in [min, max]: double */
	OPT_RESOURCE,				/* a resource's name: const PsResource * */
	OPT_PATH,					/* a path under api_url: char * */
	OPT_SECRET,					/* a credential: char * */
	OPT_COUNTRY,				/* ISO 3166 two-letter code: char * */
	OPT_FILE					/* an absolute path of a file the database
								 * server reads: char *; only a superuser or
								 * a member of pg_read_server_files may set
								 * one that no postscript_fdw server has yet */
} PsOptKind;

static const char *const kind_names[] = {
	[OPT_STRING] = "text",
	[OPT_URL] = "url",
	[OPT_BOOL] = "boolean",
	[OPT_INT] = "integer",
	[OPT_BYTES] = "bytes",
	[OPT_SECONDS] = "seconds",
	[OPT_REAL] = "number",
	[OPT_RESOURCE] = "resource",
	[OPT_PATH] = "path",
	[OPT_SECRET] = "secret",
	[OPT_COUNTRY] = "country",
	[OPT_FILE] = "file",
};

/* the catalogs options appear in; each has the struct its options go to */
typedef enum PsOptCatalog
{
	CAT_SERVER,					/* PsServerOptions */
	CAT_TABLE,					/* PsTable */
	CAT_USER_MAPPING,			/* PsUserOptions */
	CAT_COLUMN,					/* PsColumn */
	CAT_COUNT
} PsOptCatalog;

static const char *const catalog_names[] = {
	[CAT_SERVER] = "server",
	[CAT_TABLE] = "foreign table",
	[CAT_USER_MAPPING] = "user mapping",
	[CAT_COLUMN] = "column",
};

typedef struct PsOption
{
	const char *name;
	uint32		catalogs;		/* bit (1 << PsOptCatalog): where it may be
								 * given */
	PsOptCatalog home;			/* whose struct holds it */
	size_t		offset;			/* of its field there */
	PsOptKind	kind;
	double		min;			/* numeric kinds: the bounds */
	double		max;
	const char *dflt;			/* the default, written as a user would
								 * write it; NULL: dflt_doc says */
	const char *dflt_doc;		/* without dflt: what holds when unset */
	size_t		resource_field; /* unset on a table: 1 + the offset in
								 * PsResource of the value; 0: none */
	bool		superuser_above_default;	/* more than dflt needs a
											 * superuser */
	const char *requires;		/* an option that must be given with it */
	const char *doc;			/* what it does: one line of the README */
} PsOption;

/* where an option may be given, and the field that holds it */
#define IN_SERVER(field) \
	.catalogs = 1 << CAT_SERVER, .home = CAT_SERVER, \
	.offset = offsetof(PsServerOptions, field)
/* a table's value overrides the server's: both go to PsServerOptions */
#define IN_SERVER_OR_TABLE(field) \
	.catalogs = 1 << CAT_SERVER | 1 << CAT_TABLE, .home = CAT_SERVER, \
	.offset = offsetof(PsServerOptions, field)
#define IN_TABLE(field) \
	.catalogs = 1 << CAT_TABLE, .home = CAT_TABLE, \
	.offset = offsetof(PsTable, field)
#define IN_USER_MAPPING(field) \
	.catalogs = 1 << CAT_USER_MAPPING, .home = CAT_USER_MAPPING, \
	.offset = offsetof(PsUserOptions, field)
#define IN_COLUMN(field) \
	.catalogs = 1 << CAT_COLUMN, .home = CAT_COLUMN, \
	.offset = offsetof(PsColumn, field)
/* a table option whose default is its resource's field */
#define RESOURCE_DEFAULT(field, doc) \
	.resource_field = offsetof(PsResource, field) + 1, .dflt_doc = (doc)

/*
 * In this order in the hints that list the options valid on an object.
 */
static const PsOption ps_options[] = {
	{
		.name = "api_url", IN_SERVER(api_url), .kind = OPT_URL,
		.dflt = "https://api.postscript.io",
		.doc = "base URL, without `/api/v2`: requests go to `api_url` + `/api/v2/…`; `https://` except for loopback hosts (`localhost`, `127.x.x.x`, `[::1]`); no user, query or fragment"
	},
	{
		.name = "connect_timeout", IN_SERVER(connect_timeout_ms), .kind = OPT_SECONDS,
		.min = 0.001, .max = 3600, .dflt = "10",
		.doc = "time to establish a connection"
	},
	{
		.name = "request_timeout", IN_SERVER(request_timeout_ms), .kind = OPT_SECONDS,
		.min = 0.001, .max = 86400, .dflt = "60",
		.doc = "time one whole request may take"
	},
	{
		.name = "low_speed_time", IN_SERVER(low_speed_time_s), .kind = OPT_INT,
		.min = 1, .max = 3600, .dflt = "30",
		.doc = "seconds a response may stall (under 1 byte/s) before it is cut off"
	},
	{
		.name = "max_retries", IN_SERVER(max_retries), .kind = OPT_INT,
		.min = 0, .max = 100, .dflt = "5",
		.doc = "retries of one request (429, 502/503/504, connection failures)"
	},
	{
		.name = "max_retry_wait", IN_SERVER(max_retry_wait_ms), .kind = OPT_SECONDS,
		.min = 0, .max = 3600, .dflt = "60",
		.doc = "cap on the total time one request spends waiting between retries"
	},
	{
		.name = "rate_limit", IN_SERVER(rate_limit), .kind = OPT_REAL,
		.min = 0, .max = 10000, .dflt = "15",
		.doc = "requests per second this client allows itself per API token: never more than that in any one-second window (`0` = no client-side limit)"
	},
	{
		.name = "rate_burst", IN_SERVER(rate_burst), .kind = OPT_INT,
		.min = 1, .max = 10000, .dflt = "5",
		.doc = "requests that may go out at once; the rest of a window is spread at `rate_limit`/s"
	},
	{
		.name = "max_concurrency", IN_SERVER(max_concurrency), .kind = OPT_INT,
		.min = 1, .max = 64, .dflt = "8",
		.doc = "pages of one scan, or writes of one COMMIT, in flight at the same time"
	},
	{
		.name = "shared_rate_limit", IN_SERVER(shared_rate_limit), .kind = OPT_BOOL,
		.dflt = "true",
		.doc = "share one rate-limit state per credential between all backends (needs `shared_preload_libraries = 'postscript_fdw'`; otherwise each backend has its own)"
	},
	{
		.name = "read_in_groups", IN_SERVER(read_in_groups), .kind = OPT_BOOL,
		.dflt = "false",
		.doc = "while the rate limit paces a scan that has the token to itself, start its requests and read its pages in groups (of 3 at `rate_limit 15`: a divisor of the window's requests that `rate_burst` and `max_concurrency` allow), one backend wake a group instead of one a page: a fifth to a third less backend CPU a row at 15 requests/s, for a few tenths of a percent of the scan's time where the network jitters"
	},
	{
		.name = "max_response_size", IN_SERVER(max_response_bytes), .kind = OPT_BYTES,
		.min = 1024, .max = 1073741823, .dflt = "67108864",
		.superuser_above_default = true,
		.doc = "a larger response (compressed as it comes, or decoded) is an error, not an out-of-memory; what a scan holds in memory grows with it: a gzip'd page is held decoded while it is scanned"
	},
	{
		.name = "max_json_depth", IN_SERVER(max_json_depth), .kind = OPT_INT,
		.min = 2, .max = 10000, .dflt = "64",
		.doc = "deepest JSON nesting accepted"
	},
	{
		.name = "max_url_length", IN_SERVER(max_url_length), .kind = OPT_INT,
		.min = 256, .max = 1048576, .dflt = "8000",
		.doc = "longest request URL (scheme and host included): an unsorted scan whose filters make a longer one is split into several requests, each with a share of its longest `IN` list (servers and proxies answer 414 to URLs of more than about 8 kB)"
	},
	{
		.name = "page_size_estimate", IN_SERVER(page_size_estimate), .kind = OPT_INT,
		.min = 1, .max = 100000, .dflt = "100",
		.doc = "rows per page the planner assumes (the API picks the real size)"
	},
	{
		.name = "default_country", IN_SERVER(default_country), .kind = OPT_COUNTRY,
		.dflt = "US",
		.doc = "country of phone numbers written without `+`"
	},
	{
		.name = "ca_file", IN_SERVER(ca_file), .kind = OPT_FILE,
		.dflt_doc = "the system's CAs",
		.doc = "PEM file of CA certificates to verify the API's TLS certificate"
	},
	{
		.name = "progress_pages", IN_SERVER(progress_pages), .kind = OPT_INT,
		.min = 0, .max = 1000000, .dflt = "0",
		.doc = "if > 0, a NOTICE every that many pages of a scan"
	},
	{
		.name = "pushdown", IN_SERVER_OR_TABLE(pushdown), .kind = OPT_BOOL,
		.dflt = "true",
		.doc = "send filters, sorts and limits to the API"
	},
	{
		.name = "use_remote_estimate", IN_SERVER_OR_TABLE(use_remote_estimate), .kind = OPT_BOOL,
		.dflt = "false",
		.doc = "ask the API for `total_pages` when planning"
	},
	{
		.name = "batch_size", IN_SERVER_OR_TABLE(batch_size), .kind = OPT_INT,
		.min = 1, .max = 10000, .dflt = "1",
		.doc = "rows an `INSERT` sends per batch"
	},
	{
		.name = "send_at_commit", IN_SERVER_OR_TABLE(send_at_commit), .kind = OPT_BOOL,
		.dflt = "true",
		.doc = "writes are sent when the transaction commits; `false` sends each row as the statement runs (not in a statement that also pages through a Postscript list)"
	},
	{
		.name = "resource", IN_TABLE(res), .kind = OPT_RESOURCE,
		.dflt_doc = "the table's name",
		.doc = "which Postscript object the table is, by resource name (`subscribers`, `campaigns`, …: see Tables and columns)"
	},
	{
		.name = "endpoint", IN_TABLE(endpoint), .kind = OPT_PATH,
		RESOURCE_DEFAULT(path, "the resource's path"), .requires = "resource",
		.doc = "another path for the resource's list endpoint, e.g. `/api/v2/sms_campaigns`"
	},
	{
		.name = "records_key", IN_TABLE(records_key), .kind = OPT_STRING,
		RESOURCE_DEFAULT(records_key, "the resource's key"), .requires = "resource",
		.doc = "the JSON key holding the rows in a list response"
	},
	{
		.name = "paginated", IN_TABLE(paginated), .kind = OPT_BOOL,
		RESOURCE_DEFAULT(paginated, "the resource's"),
		.doc = "`false` reads one response; `true` walks `page=1,2,…`"
	},
	{
		.name = "api_key", IN_USER_MAPPING(api_key), .kind = OPT_SECRET,
		.dflt_doc = "none: required",
		.doc = "the shop's private key, or a partner's key; sent as `Authorization: Bearer …`"
	},
	{
		.name = "shop_token", IN_USER_MAPPING(shop_token), .kind = OPT_SECRET,
		.dflt_doc = "none",
		.doc = "for partners: the shop's private key, sent as `X-Postscript-Shop-Token`"
	},
	{
		.name = "webhook_token", IN_USER_MAPPING(webhook_token), .kind = OPT_SECRET,
		.dflt_doc = "none",
		.doc = "the shop's webhook signing token (`GET /api/v2/webhooks/token`): deliveries must carry it as `Postscript-Signature`; never sent anywhere"
	},
	{
		.name = "field", IN_COLUMN(field), .kind = OPT_STRING,
		.dflt_doc = "the field of the resource's column of that name, else the column's name",
		.doc = "the JSON key, or a dotted path (`subscriptions.promotional.can_send`, `stats.revenue`); `$` is the whole object"
	},
};

/* apply_options() tells which were given in a bit mask */
StaticAssertDecl(lengthof(ps_options) <= 64, "ps_options[] has more than 64 entries");

/* the catalog an options list of the validator belongs to; -1: another */
static int
option_catalog(Oid catalog)
{
	switch (catalog)
	{
		case ForeignServerRelationId:
			return CAT_SERVER;
		case ForeignTableRelationId:
			return CAT_TABLE;
		case UserMappingRelationId:
			return CAT_USER_MAPPING;
		case AttributeRelationId:
			return CAT_COLUMN;
		default:
			return -1;
	}
}

static const char *
context_name(int cat)
{
	switch (cat)
	{
		case CAT_SERVER:
			return "a server";
		case CAT_TABLE:
			return "a foreign table";
		case CAT_USER_MAPPING:
			return "a user mapping";
		case CAT_COLUMN:
			return "a column";
		default:
			return "this object";
	}
}

static bool
option_in(const PsOption *opt, int cat)
{
	return cat >= 0 && (opt->catalogs & (1 << cat)) != 0;
}

static const PsOption *
find_option(const char *name, int cat)
{
	for (int i = 0; i < lengthof(ps_options); i++)
		if (option_in(&ps_options[i], cat) && strcmp(ps_options[i].name, name) == 0)
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

/* whether url's path ends in /api/v2 (trailing slashes aside) */
static bool
ends_with_api_version(const char *url)
{
	const char *suffix = "/api/v2";
	size_t		len = strlen(url);

	while (len > 0 && url[len - 1] == '/')
		len--;
	return len >= strlen(suffix) &&
		strncmp(url + len - strlen(suffix), suffix, strlen(suffix)) == 0;
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
	if (ends_with_api_version(url))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
				 errmsg("invalid value for option \"%s\"", name),
				 errdetail("The tables' endpoints begin with /api/v2 already: requests would go to …/api/v2/api/v2/subscribers."),
				 errhint("Leave /api/v2 out of the URL, as in https://api.postscript.io.")));
}

/*
 * Whether a postscript_fdw server (one whose wrapper has this validator)
 * already has the option name = value.  A value only a superuser may set
 * (a URL, a response cap above the default) can only have got there through
 * a superuser, so a non-superuser may reuse it: the owner of such a server
 * can then change its other options (the validator sees the whole list
 * again), and nobody can aim the database server anywhere new or raise a
 * cap no superuser chose.
 */
static bool
value_in_use(const char *name, const char *value, Oid validator)
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

			if (strcmp(def->defname, name) == 0 &&
				strcmp(defGetString(def), value) == 0)
				found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* the error of a number out of its kind or bounds */
static void
invalid_number(const PsOption *opt, const char *value)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
			 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
			 errdetail("It must be %s between %.15g and %.15g%s.",
					   opt->kind == OPT_INT || opt->kind == OPT_BYTES ?
					   "an integer" : "a number",
					   opt->min, opt->max,
					   opt->kind == OPT_SECONDS ? " (seconds)" : "")));
}

/*
 * Check the value of def, an option of kind opt, as its kind says: the same
 * check for a user's value and for the default (a URL's is the validator's
 * alone).  When field is not NULL, store the value there, in the field's
 * type and unit.  Returns the number a numeric kind holds (0 for others).
 */
static double
parse_value(const PsOption *opt, DefElem *def, void *field)
{
	const char *value = defGetString(def);
	double		d = 0;

	switch (opt->kind)
	{
		case OPT_STRING:
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			if (field)
				*(char **) field = pstrdup(value);
			break;
		case OPT_FILE:
			if (!is_absolute_path(value))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\"", opt->name),
						 errdetail("It must be an absolute path.")));
			if (field)
				*(char **) field = pstrdup(value);
			break;
		case OPT_URL:
			/* what a URL may be is the validator's: check_url() */
			if (field)
			{
				char	   *url = pstrdup(value);
				size_t		len = strlen(url);

				while (len > 0 && url[len - 1] == '/')
					url[--len] = '\0';
				*(char **) field = url;
			}
			break;
		case OPT_BOOL:
			{
				bool		b;

				/* the words a boolean setting takes (on, off, yes, 1...) */
				if (!parse_bool(value, &b))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
							 errdetail("It must be true or false.")));
				if (field)
					*(bool *) field = b;
				break;
			}
		case OPT_INT:
		case OPT_BYTES:
		case OPT_SECONDS:
		case OPT_REAL:
			{
				char	   *end;

				errno = 0;
				d = strtod(value, &end);
				while (*end && isspace((unsigned char) *end))
					end++;
				/* strtod takes "nan", which no range comparison excludes */
				if (errno != 0 || end == value || *end != '\0' || isnan(d) ||
					((opt->kind == OPT_INT || opt->kind == OPT_BYTES) &&
					 d != (double) (int64) d) ||
					d < opt->min || d > opt->max)
					invalid_number(opt, value);
				if (field == NULL)
					break;
				Assert(opt->max <= PG_INT32_MAX / (opt->kind == OPT_SECONDS ? 1000 : 1));
				if (opt->kind == OPT_INT)
					*(int *) field = (int) d;
				else if (opt->kind == OPT_BYTES)
					*(int64 *) field = (int64) d;
				else if (opt->kind == OPT_SECONDS)
					*(int *) field = (int) (d * 1000);
				else
					*(double *) field = d;
				break;
			}
		case OPT_RESOURCE:
			{
				const PsResource *res = ps_resource_by_name(value);

				if (res == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
							 errmsg("unknown Postscript resource \"%s\"", value),
							 errhint("Valid resources are: %s.", ps_resource_names())));
				if (field)
					*(const PsResource **) field = res;
				break;
			}
		case OPT_PATH:
			if (value[0] != '/' || strpbrk(value, "?# \t\r\n") != NULL ||
				strstr(value, "..") != NULL || strstr(value, "//") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errdetail("An endpoint is a path under api_url, such as /api/v2/subscribers, without query string.")));
			if (field)
				*(char **) field = pstrdup(value);
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
						 strcmp(opt->name, "webhook_token") == 0
						 ? errhint("Use the shop's webhook token, the answer of GET /api/v2/webhooks/token.")
						 : errhint("Use the shop's private API key (sk_...) from Postscript's API settings.")));
			if (strpbrk(value, "\r\n") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("option \"%s\" must not contain line breaks", opt->name)));
			if (field)
				*(char **) field = pstrdup(value);
			break;
		case OPT_COUNTRY:
			if (!ps_country_code_assigned(value))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
						 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
						 errdetail("It must be an assigned two-letter ISO 3166 country code, such as US or GB."),
						 pg_strcasecmp(value, "UK") == 0
						 ? errhint("The United Kingdom's code is GB.") : 0));
			if (field)
				*(char **) field = pstrdup(value);
			break;
	}
	return d;
}

/* the default of opt as an option list's element */
static DefElem *
default_elem(const PsOption *opt)
{
	Assert(opt->dflt != NULL);
	return makeDefElem(pstrdup(opt->name), (Node *) makeString(pstrdup(opt->dflt)), -1);
}

static char *
valid_options(int cat)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(ps_options); i++)
		if (option_in(&ps_options[i], cat))
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", ps_options[i].name);
	return buf.len ? buf.data : pstrdup("(none)");
}

static bool
has_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(((DefElem *) lfirst(lc))->defname, name) == 0)
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(postscript_fdw_validator);

Datum
postscript_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	int			cat = option_catalog(PG_GETARG_OID(1));
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const PsOption *opt = find_option(def->defname, cat);
		double		d;

		if (opt == NULL)
		{
			if (find_option(def->defname, CAT_USER_MAPPING) != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" is not allowed on %s",
								def->defname, context_name(cat)),
						 errdetail("Credentials are kept only in user mappings, which only their user and superusers can read."),
						 errhint("Use CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (%s '...').",
								 def->defname)));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint("Valid options on %s are: %s.",
							 context_name(cat), valid_options(cat))));
		}

		/*
		 * Where the database server connects to is checked when it is set,
		 * as is who may set it, not each time a server's options are read.
		 */
		if (opt->kind == OPT_URL)
		{
			if (!superuser() &&
				!value_in_use(opt->name, defGetString(def), fcinfo->flinfo->fn_oid))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser may set option \"%s\"", opt->name),
						 errdetail("The API URL decides which host the database server connects to."),
						 errhint("A non-superuser may use only a URL that a superuser already set on a postscript_fdw server.")));
			check_url(opt->name, defGetString(def));
		}
		/* the database server reads the file, with its own permissions */
		if (opt->kind == OPT_FILE && !superuser() &&
			!has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES) &&
			!value_in_use(opt->name, defGetString(def), fcinfo->flinfo->fn_oid))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser or a member of pg_read_server_files may set option \"%s\"",
							opt->name),
					 errdetail("The database server reads the file with its own permissions."),
					 errhint("Others may use only a file that such a role already set on a postscript_fdw server.")));
		d = parse_value(opt, def, NULL);
		/* a page is held while it is read: its cap bounds a backend's memory */
		if (opt->superuser_above_default && !superuser() &&
			d > parse_value(opt, default_elem(opt), NULL) &&
			!value_in_use(opt->name, defGetString(def), fcinfo->flinfo->fn_oid))
		{
			Assert(opt->kind == OPT_BYTES);
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only a superuser may set option \"%s\" above %s bytes",
							opt->name, opt->dflt),
					 errdetail("What a scan holds in memory grows with the size of a response."),
					 errhint("A non-superuser may use only a value above the default that a superuser already set on a postscript_fdw server.")));
		}
	}

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const PsOption *opt = find_option(def->defname, cat);

		Assert(opt != NULL);
		if (opt->requires != NULL && !has_option(options, opt->requires))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("option \"%s\" needs option \"%s\"", opt->name, opt->requires),
					 errhint("Name the Postscript object the endpoint serves: %s.",
							 ps_resource_names())));
	}

	PG_RETURN_VOID();
}

/* ------------------------------------------------------ the declarations */

PG_FUNCTION_INFO_V1(postscript_fdw_options);

#define OPTIONS_COLS 10

/*
 * postscript_fdw_options(): one row per option as declared above, for the
 * manual (scripts/checks/options_documented.sh makes its tables from it).
 */
Datum
postscript_fdw_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);

	for (int i = 0; i < lengthof(ps_options); i++)
	{
		const PsOption *opt = &ps_options[i];
		Datum		values[OPTIONS_COLS];
		bool		nulls[OPTIONS_COLS] = {0};
		Datum		cats[CAT_COUNT];
		int			ncats = 0;
		bool		numeric = opt->kind == OPT_INT || opt->kind == OPT_BYTES ||
			opt->kind == OPT_SECONDS || opt->kind == OPT_REAL;

		/* a default is declared, one way or the other */
		Assert((opt->dflt == NULL) != (opt->dflt_doc == NULL));

		for (int c = 0; c < CAT_COUNT; c++)
			if (opt->catalogs & (1 << c))
				cats[ncats++] = CStringGetTextDatum(catalog_names[c]);
		values[0] = CStringGetTextDatum(opt->name);
		values[1] = PointerGetDatum(construct_array(cats, ncats, TEXTOID, -1, false,
													TYPALIGN_INT));
		values[2] = CStringGetTextDatum(kind_names[opt->kind]);
		values[3] = Float8GetDatum(opt->min);
		values[4] = Float8GetDatum(opt->max);
		nulls[3] = nulls[4] = !numeric;
		values[5] = opt->dflt ? CStringGetTextDatum(opt->dflt) : (Datum) 0;
		nulls[5] = opt->dflt == NULL;
		values[6] = opt->dflt_doc ? CStringGetTextDatum(opt->dflt_doc) : (Datum) 0;
		nulls[6] = opt->dflt_doc == NULL;
		values[7] = opt->requires ? CStringGetTextDatum(opt->requires) : (Datum) 0;
		nulls[7] = opt->requires == NULL;
		if (opt->kind == OPT_URL)
			values[8] = CStringGetTextDatum("Only a superuser may set a URL that no postscript_fdw server has yet; others may reuse one or drop the option.");
		else if (opt->kind == OPT_FILE)
			values[8] = CStringGetTextDatum("Only a superuser or a member of pg_read_server_files may set a file that no postscript_fdw server has yet; others may reuse one.");
		else if (opt->superuser_above_default)
			values[8] = CStringGetTextDatum("Only a superuser may set more than the default; others may reuse a value a superuser set.");
		else
			nulls[8] = true;
		values[9] = CStringGetTextDatum(opt->doc);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ---------------------------------------------------------------- lookups */

/*
 * Store the options of a list given on catalog cat in the structs they
 * live in: home[c] is the struct of the options whose home is catalog c.
 * parse_value() checks the values again as it stores them (the catalog
 * may hold what an older validator let through).  Returns the options
 * given, bit i for ps_options[i].
 */
static uint64
apply_options(List *options, int cat, void *const home[CAT_COUNT])
{
	uint64		given = 0;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const PsOption *opt = find_option(def->defname, cat);

		if (opt == NULL)
			continue;			/* the validator refuses it: not set by us */
		Assert(home[opt->home] != NULL);
		parse_value(opt, def, (char *) home[opt->home] + opt->offset);
		given |= UINT64CONST(1) << (opt - ps_options);
	}
	return given;
}

/*
 * The declared defaults: a PsServerOptions as if no option were given.
 * Only options stored there have one written as a value (the others' come
 * from the resource or the column, or there is none).  Parsed once per
 * backend, into TopMemoryContext, and never changed after.
 */
static const PsServerOptions *
server_defaults(void)
{
	static PsServerOptions *defaults = NULL;

	if (defaults == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		PsServerOptions *d = palloc0(sizeof(PsServerOptions));

		for (int i = 0; i < lengthof(ps_options); i++)
		{
			const PsOption *opt = &ps_options[i];

			if (opt->dflt == NULL)
				continue;
			Assert(opt->home == CAT_SERVER);
			parse_value(opt, default_elem(opt), (char *) d + opt->offset);
		}
		MemoryContextSwitchTo(old);
		defaults = d;
	}
	return defaults;
}

PsServerOptions *
ps_get_server_options(ForeignServer *server)
{
	PsServerOptions *o = palloc(sizeof(PsServerOptions));
	void	   *home[CAT_COUNT] = {[CAT_SERVER] = o};

	*o = *server_defaults();
	apply_options(server->options, CAT_SERVER, home);
	return o;
}

PsUserOptions *
ps_get_user_options(UserMapping *um)
{
	PsUserOptions *o = palloc0(sizeof(PsUserOptions));
	void	   *home[CAT_COUNT] = {[CAT_USER_MAPPING] = o};

	apply_options(um->options, CAT_USER_MAPPING, home);
	return o;
}

/* the table options not given (bits of given) whose default is t's resource's */
static void
apply_resource_defaults(PsTable *t, uint64 given)
{
	for (int i = 0; i < lengthof(ps_options); i++)
	{
		const PsOption *opt = &ps_options[i];
		const char *from;
		char	   *to;

		if (opt->resource_field == 0 || (given & (UINT64CONST(1) << i)))
			continue;
		Assert(opt->home == CAT_TABLE);
		from = (const char *) t->res + opt->resource_field - 1;
		to = (char *) t + opt->offset;
		if (opt->kind == OPT_BOOL)
			*(bool *) to = *(const bool *) from;
		else
		{
			const char *s = *(const char *const *) from;

			Assert(opt->kind == OPT_STRING || opt->kind == OPT_PATH);
			*(char **) to = s ? pstrdup(s) : NULL;
		}
	}
}

/*
 * Resolve a foreign table: the server's options with the table's over
 * them, its resource (option "resource", else the table's name), endpoint,
 * and for every column the JSON field it reads (column option "field",
 * else the descriptor column of that name's, else the column name itself)
 * and how to convert it.
 */
PsTable *
ps_get_table(Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(ft->serverid);
	PsTable    *t = palloc0(sizeof(PsTable));
	void	   *home[CAT_COUNT] = {NULL};
	uint64		given;
	Relation	rel;
	TupleDesc	tupdesc;

	t->relid = relid;
	t->relname = get_rel_name(relid);
	t->serverid = ft->serverid;
	t->sopts = ps_get_server_options(server);

	home[CAT_SERVER] = t->sopts;
	home[CAT_TABLE] = t;
	given = apply_options(ft->options, CAT_TABLE, home);
	if (t->res == NULL)
		t->res = ps_resource_by_name(t->relname);
	if (t->res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("foreign table \"%s\" does not name a Postscript resource", t->relname),
				 errhint("Add OPTIONS (resource '...') with one of: %s.", ps_resource_names())));
	apply_resource_defaults(t, given);

	rel = table_open(relid, AccessShareLock);
	tupdesc = RelationGetDescr(rel);
	t->natts = tupdesc->natts;
	t->columns = palloc0(sizeof(PsColumn) * tupdesc->natts);
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		PsColumn   *col;
		void	   *colhome[CAT_COUNT] = {NULL};

		if (att->attisdropped)
			continue;
		col = &t->columns[t->ncolumns++];
		colhome[CAT_COLUMN] = col;
		col->attnum = att->attnum;
		col->name = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;

		apply_options(GetForeignColumnOptions(relid, att->attnum), CAT_COLUMN, colhome);
		if (col->field == NULL)
		{
			const PsColumnDef *d = ps_column_by_name(t->res, col->name);

			col->field = pstrdup(d ? d->field : col->name);
		}
		col->def = ps_column_by_field(t->res, col->field);
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
