/*-------------------------------------------------------------------------
 *
 * stats.c
 *		  postscript_fdw_stats() and postscript_fdw_stats_reset(): what this
 *		  backend's connections to Postscript have done (requests by status
 *		  class, 429s, retries, time waited, bytes and rows).  The counters
 *		  live in the connection cache (connection.c) and are kept across
 *		  queries; they never hold a credential.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "postscript_fdw.h"

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

PG_FUNCTION_INFO_V1(postscript_fdw_stats);
PG_FUNCTION_INFO_V1(postscript_fdw_stats_reset);

#define STATS_COLS 13

Datum
postscript_fdw_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	InitMaterializedSRF(fcinfo, 0);

	foreach(lc, ps_all_connections())
	{
		PsConn	   *conn = lfirst(lc);
		PsConnStats *s = &conn->stats;
		Datum		values[STATS_COLS];
		bool		nulls[STATS_COLS] = {0};
		char	   *role = GetUserNameFromId(conn->userid, true);

		values[0] = CStringGetTextDatum(conn->server_name);
		if (OidIsValid(conn->userid) && role != NULL)
			values[1] = CStringGetTextDatum(role);
		else
			values[1] = CStringGetTextDatum("public");
		values[2] = Int64GetDatum(s->requests);
		values[3] = Int64GetDatum(s->status_2xx);
		values[4] = Int64GetDatum(s->status_4xx);
		values[5] = Int64GetDatum(s->status_5xx);
		values[6] = Int64GetDatum(s->status_429);
		values[7] = Int64GetDatum(s->transport_errors);
		values[8] = Int64GetDatum(s->retries);
		values[9] = Float8GetDatum(s->rate_wait_ms);
		values[10] = Float8GetDatum(s->backoff_wait_ms);
		values[11] = Int64GetDatum(s->bytes_received);
		values[12] = Int64GetDatum(s->rows);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
postscript_fdw_stats_reset(PG_FUNCTION_ARGS)
{
	ListCell   *lc;

	foreach(lc, ps_all_connections())
	{
		PsConn	   *conn = lfirst(lc);

		memset(&conn->stats, 0, sizeof(conn->stats));
	}
	PG_RETURN_VOID();
}
