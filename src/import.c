/*-------------------------------------------------------------------------
 *
 * import.c
 *		IMPORT FOREIGN SCHEMA postscript: one foreign table per resource,
 *		built from the resource descriptors.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "postscript_fdw.h"

/* is the resource selected by LIMIT TO / EXCEPT? */
static bool
selected(ImportForeignSchemaStmt *stmt, const char *name)
{
	ListCell   *lc;

	if (stmt->list_type == FDW_IMPORT_SCHEMA_ALL)
		return true;
	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (strcmp(rv->relname, name) == 0)
			return stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO;
	}
	return stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT;
}

List *
ps_import_foreign_schema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;

	if (strcmp(stmt->remote_schema, "postscript") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("Postscript has no schema \"%s\"", stmt->remote_schema),
				 errhint("Use IMPORT FOREIGN SCHEMA postscript FROM SERVER %s INTO ...;",
						 quote_identifier(server->servername))));
	if (stmt->options != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("IMPORT FOREIGN SCHEMA postscript takes no options")));

	for (int i = 0; i < ps_nresources; i++)
	{
		const PsResource *res = &ps_resources[i];
		StringInfoData buf;

		if (!selected(stmt, res->name))
			continue;
		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (\n", quote_identifier(res->name));
		for (int c = 0; c < res->ncolumns; c++)
		{
			const PsColumnDef *col = &res->columns[c];

			appendStringInfo(&buf, "  %s %s%s\n", quote_identifier(col->name), col->type,
							 c + 1 < res->ncolumns ? "," : "");
		}
		appendStringInfo(&buf, ") SERVER %s OPTIONS (resource %s)",
						 quote_identifier(server->servername),
						 quote_literal_cstr(res->name));
		commands = lappend(commands, buf.data);
	}
	return commands;
}
