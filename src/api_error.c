/*-------------------------------------------------------------------------
 *
 * api_error.c
 *		Postscript's error format: the three error body shapes, what they
 *		mean (a conflict, an unknown id), and an HTTP error status turned
 *		into a PostgreSQL error.
 *
 * Postscript answers errors in three shapes (part A of the API contract):
 *   {"error_code": 3001, "error_message": "...", "success": false}
 *   {"errors": [{"loc": [...], "msg": "...", "type": "v2.access_denied"}]}
 *   {"error": "..."}
 * A subscriber that already exists, active or pending, is an "errors" body
 * whose type is "v2.entity_conflict"; its status is not documented, so the
 * conflict is recognised by the type, whatever the 4xx status.  The 409 and
 * error_code 3009 of an earlier reading of the documentation are still
 * recognised.  An unknown id in GET and PATCH /subscribers/{id} is
 * documented as a 400 with the body {} (the only error the reference lists
 * for either); a 404 is read the same way.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "lib/stringinfo.h"

#include "postscript_fdw.h"

/* the error_code of the withdrawn "subscriber already exists" answer */
#define LEGACY_CONFLICT_CODE	3009
/* the documented error_code of a 404: "Could not find ... matching" */
#define NOT_FOUND_CODE			3001

/* "GET /api/v2/...": the request, for messages; never a secret */
static char *
describe_request(const char *method, const char *path)
{
	size_t		len = strlen(path);

	if (len > 200)
		return psprintf("%s %.200s...", method, path);
	return psprintf("%s %s", method, path);
}

/* The error context of every API request, for use inside ereport() */
int
ps_request_errcontext(const char *server_name, const char *method, const char *path)
{
	Assert(server_name != NULL);
	return errcontext("postscript_fdw request %s on server \"%s\"",
					  describe_request(method, path), server_name);
}

/* the body as a JSON value, or NULL; the caller puts it */
static PsJson *
parse_error_body(const char *body, size_t len)
{
	json_tokener *tok;
	PsJson	   *root;

	if (body == NULL || len == 0)
		return NULL;
	tok = json_tokener_new_ex(16);
	if (tok == NULL)
		return NULL;
	root = json_tokener_parse_ex(tok, body, (int) Min(len, (size_t) INT_MAX));
	json_tokener_free(tok);
	return root;
}

char *
ps_api_error_message(const char *body, size_t len)
{
	PsJson	   *root = parse_error_body(body, len);
	PsJson	   *v;
	char	   *msg = NULL;

	if (root == NULL)
		return NULL;

	if (json_object_is_type(root, json_type_object))
	{
		if (json_object_object_get_ex(root, "error_message", &v) &&
			json_object_is_type(v, json_type_string))
		{
			PsJson	   *code;

			if (json_object_object_get_ex(root, "error_code", &code) &&
				json_object_is_type(code, json_type_int))
				msg = psprintf("%s (error_code %d)", json_object_get_string(v),
							   json_object_get_int(code));
			else
				msg = pstrdup(json_object_get_string(v));
		}
		else if (json_object_object_get_ex(root, "errors", &v) &&
				 json_object_is_type(v, json_type_array))
		{
			StringInfoData buf;

			initStringInfo(&buf);
			for (size_t i = 0; i < json_object_array_length(v) && i < 10; i++)
			{
				PsJson	   *e = json_object_array_get_idx(v, i);
				PsJson	   *m,
						   *loc;

				if (buf.len)
					appendStringInfoString(&buf, "; ");
				if (json_object_object_get_ex(e, "loc", &loc) &&
					json_object_is_type(loc, json_type_array))
				{
					for (size_t j = 0; j < json_object_array_length(loc); j++)
						appendStringInfo(&buf, "%s%s", j ? "." : "",
										 json_object_get_string(json_object_array_get_idx(loc, j)));
					appendStringInfoString(&buf, ": ");
				}
				if (json_object_object_get_ex(e, "msg", &m))
					appendStringInfoString(&buf, json_object_get_string(m));
			}
			msg = buf.data;
		}
		else if (json_object_object_get_ex(root, "error", &v) &&
				 json_object_is_type(v, json_type_string))
			msg = pstrdup(json_object_get_string(v));
		else if (json_object_object_get_ex(root, "message", &v) &&
				 json_object_is_type(v, json_type_string))
			msg = pstrdup(json_object_get_string(v));
	}
	json_object_put(root);
	return msg;
}

/* does an "errors" body hold an entry of this type? */
static bool
has_error_type(PsJson *root, const char *type)
{
	PsJson	   *errors;

	if (!json_object_is_type(root, json_type_object) ||
		!json_object_object_get_ex(root, "errors", &errors) ||
		!json_object_is_type(errors, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(errors); i++)
	{
		PsJson	   *e = json_object_array_get_idx(errors, i);
		PsJson	   *t;

		if (json_object_is_type(e, json_type_object) &&
			json_object_object_get_ex(e, "type", &t) &&
			json_object_is_type(t, json_type_string) &&
			strcmp(json_object_get_string(t), type) == 0)
			return true;
	}
	return false;
}

/* whether root is the error_code shape with this code */
static bool
has_error_code(PsJson *root, int code)
{
	PsJson	   *v;

	return json_object_is_type(root, json_type_object) &&
		json_object_object_get_ex(root, "error_code", &v) &&
		json_object_is_type(v, json_type_int) &&
		json_object_get_int(v) == code;
}

/*
 * What an error answer says of the object a request names: Postscript's
 * "already exists" (v2.entity_conflict in any 4xx; the withdrawn 409 /
 * error_code 3009 as a fallback), its "could not find" (a 404 with error_code
 * 3001, the documented body), an unknown id (any other 404, or the documented
 * 400 with the body {}: an empty object), or none of those.  What the body
 * says is read first: an "already exists" is that whatever its status.
 */
PsApiAnswer
ps_api_classify(long status, const char *body, size_t len)
{
	PsJson	   *root;
	PsApiAnswer answer = PS_ANSWER_OTHER;

	if (status < 400 || status >= 500)
		return PS_ANSWER_OTHER;
	if (status == 409)
		return PS_ANSWER_CONFLICT;
	root = parse_error_body(body, len);
	if (root != NULL && (has_error_type(root, "v2.entity_conflict") ||
						 has_error_code(root, LEGACY_CONFLICT_CODE)))
		answer = PS_ANSWER_CONFLICT;
	else if (status == 404)
		answer = root != NULL && has_error_code(root, NOT_FOUND_CODE)
			? PS_ANSWER_NOT_FOUND : PS_ANSWER_UNKNOWN_ID;
	else if (status == 400 && root != NULL &&
			 json_object_is_type(root, json_type_object) &&
			 json_object_object_length(root) == 0)
		answer = PS_ANSWER_UNKNOWN_ID;
	if (root != NULL)
		json_object_put(root);
	return answer;
}

/*
 * Raise the error an HTTP error status means, the final answer after
 * retries attempts made again; never returns.
 */
void
ps_report_http_status(PsConn *conn, const char *method, const char *path,
					  long status, const char *body, size_t len, int retries)
{
	char	   *apimsg = ps_api_error_message(body, len);
	int			code;
	const char *msg;
	const char *hint = NULL;

	if (ps_api_classify(status, body, len) == PS_ANSWER_CONFLICT)
	{
		code = ERRCODE_UNIQUE_VIOLATION;
		msg = "Postscript reports a conflict";
		hint = "The object already exists (a subscriber: active or still pending). INSERT ... ON CONFLICT DO NOTHING skips such rows.";
	}
	else
		switch (status)
		{
			case 400:
			case 422:
				code = ERRCODE_INVALID_PARAMETER_VALUE;
				msg = "Postscript rejected the request as invalid";
				break;
			case 401:
				code = ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION;
				msg = "Postscript rejected the credentials";
				hint = "Check the api_key option of the user mapping: it must be the shop's private key (sk_...), or a partner key together with shop_token.";
				break;
			case 403:
				code = ERRCODE_INSUFFICIENT_PRIVILEGE;
				msg = "Postscript denied access";
				hint = "A partner key (sk_partner_...) needs the shop_token option on the user mapping; a shop key must not be a public pk_ key.";
				break;
			case 404:
				code = ERRCODE_FDW_TABLE_NOT_FOUND;
				msg = "Postscript has no such object or endpoint";
				hint = "Check the table's resource and endpoint options.";
				break;
			case 414:
				code = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
				msg = "Postscript refused the request's URL as too long";
				if (strlen(conn->opts->api_url) + strlen(path) > (size_t) conn->opts->max_url_length)
					hint = psprintf("The URL is longer than the server's max_url_length option (%d): a scan splits only its longest IN list, and what remains (the other filters, a sort, one long value) does not fit. Shorten those filters.",
									conn->opts->max_url_length);
				else
					hint = psprintf("A scan splits a long IN list across requests whose URLs stay within the server's max_url_length option (now %d): lower it below the limit of the API or of a proxy in between.",
									conn->opts->max_url_length);
				break;
			case 429:
				code = ERRCODE_CONFIGURATION_LIMIT_EXCEEDED;
				msg = retries > 0 ?
					psprintf("Postscript's rate limit was still exceeded after %d %s",
							 retries, retries == 1 ? "retry" : "retries") :
					"Postscript's rate limit was exceeded";
				hint = "Lower the server's rate_limit option, or raise max_retries or max_retry_wait.";
				break;
			default:
				code = ERRCODE_FDW_ERROR;
				if (status >= 300 && status < 400)
				{
					msg = "Postscript answered with a redirect, which is not followed";
					hint = "Check the server's api_url option; redirects are refused so that the API key is never sent to another host.";
				}
				else if (status >= 500)
					msg = "Postscript failed to answer the request";
				else
					msg = "Postscript answered with an unexpected status";
				break;
		}

	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", msg),
			 apimsg ? errdetail("HTTP %ld: %s", status, apimsg)
			 : errdetail("HTTP %ld.", status),
			 hint ? errhint("%s", hint) : 0,
			 ps_request_errcontext(conn->server_name, method, path)));
	pg_unreachable();
}
