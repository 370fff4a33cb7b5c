/*-------------------------------------------------------------------------
 *
 * json_stream.c
 *		Response bodies as JSON: pages scanned as they arrive (the scanner,
 *		src/pagescan.c, set up over a memory context), the errors of a body
 *		that is not JSON or not the list it should be, and json-c parsing of
 *		a write's answer.
 *
 * A page's scanner and everything it keeps live in the memory context that
 * was current when it was made (a scan's page context): a reset frees them,
 * on every path, so no error or cancel leaks a page.  The scanner never
 * raises, so it may run inside libcurl's write callback; what went wrong is
 * reported here once the transfer is over.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "utils/memutils.h"

#include "postscript_fdw.h"

void *
ps_alloc(void *cxt, size_t size)
{
	return MemoryContextAllocExtended((MemoryContext) cxt, size,
									  MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

PsPageScan *
ps_page_new(PsRowReader *reader, PsScanMode mode, const char *records_key, int max_depth)
{
	const PsPageSpec *spec = reader ? reader->spec
		: ps_spec_new(ps_alloc, CurrentMemoryContext, 0);
	PsPageScan *scan;

	Assert(mode != PS_SCAN_LIST || records_key != NULL);
	scan = spec ? ps_scan_new(spec, mode, records_key, max_depth, ps_alloc,
							  CurrentMemoryContext) : NULL;
	if (scan == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return scan;
}

/* a body that is not one JSON value: what is wrong (NULL: it ended early) */
static void
json_error(const char *what, int64 len, const char *server, const char *method,
		   const char *path)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_JSON_TEXT),
			 errmsg("Postscript sent a malformed JSON response"),
			 errdetail("%s (%lld bytes received).",
					   what ? what : "The response ended in the middle of a JSON value",
					   (long long) len),
			 ps_request_errcontext(server, method, path)));
}

void
ps_page_finish(PsPageScan *scan, int64 received, const char *server,
			   const char *method, const char *path)
{
	PsScanError err = ps_scan_finish(scan);

	if (err == PS_SCAN_ERR_OOM)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while reading a Postscript response"),
				 errdetail("%lld bytes received.", (long long) received),
				 ps_request_errcontext(server, method, path)));
	if (err != PS_SCAN_OK)
		json_error(err == PS_SCAN_INCOMPLETE ? NULL : ps_scan_error_desc(err),
				   received, server, method, path);
}

void
ps_page_check_list(PsPageScan *scan, const PsTable *t, const char *server, const char *path)
{
	PsScanShape shape = ps_scan_shape(scan);

	if (shape == PS_SHAPE_OK || (shape == PS_SHAPE_EMPTY && t->res->empty_is_none))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg(shape != PS_SHAPE_NOT_ARRAY
					? "Postscript response for foreign table \"%s\" has no \"%s\" key"
					: "Postscript response for foreign table \"%s\" has a \"%s\" that is not an array",
					t->relname, t->records_key),
			 errhint("Check the table's endpoint and records_key options."),
			 ps_request_errcontext(server, "GET", path)));
}

/* ---------------------------------------------------------------- json-c */

static void
json_put_callback(void *arg)
{
	json_object_put((PsJson *) arg);
}

/* only JSON white space in p[0..n) */
static bool
only_space(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

PsJson *
ps_parse_json(const char *body, size_t len, int max_depth,
			  const char *server, const char *method, const char *path)
{
	json_tokener *tok;
	PsJson	   *root;
	enum json_tokener_error jerr;
	size_t		consumed;
	MemoryContextCallback *cb;

	if (len > (size_t) INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("Postscript response is too large to parse")));
	cb = palloc(sizeof(MemoryContextCallback));
	tok = json_tokener_new_ex(max_depth);
	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	json_tokener_set_flags(tok, PS_JSON_TOKENER_FLAGS);
	root = json_tokener_parse_ex(tok, body, (int) len);
	jerr = json_tokener_get_error(tok);
	consumed = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (root != NULL && jerr == json_tokener_success && !only_space(body + consumed, len - consumed))
	{
		json_object_put(root);
		root = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	if (root == NULL)
		json_error(jerr == json_tokener_continue || jerr == json_tokener_success
				   ? NULL : json_tokener_error_desc(jerr), (int64) len, server, method, path);
	/* the tree lives as long as the current memory context */
	cb->func = json_put_callback;
	cb->arg = root;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return root;
}
