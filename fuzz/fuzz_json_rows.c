/*
 * libFuzzer harness for the JSON-to-row conversion (src/json_conv.c, and
 * ps_parse_json of src/http.c), which calls PostgreSQL's type input
 * functions and so runs only inside a backend.
 *
 * This file and the extension's sources are built (clang,
 * -fsanitize=fuzzer-no-link, linked with libFuzzer's no-main runtime) into
 * a test-only library that fuzz/run.sh loads into a single-user postgres
 * process: SELECT postscript_fdw_fuzz_rows('fuzz.t'::regclass, '<libFuzzer
 * arguments>') hands control to LLVMFuzzerRunDriver, which feeds each input
 * as a response body: parsed with the server's limits, then every record
 * (the body itself, or each element of an array) converted to a row of
 * foreign table fuzz.t, whose columns cover the types a user may choose.
 * A PostgreSQL ERROR is an accepted outcome (flushed, memory reset); a
 * crash, a hang or a failed assertion is a finding.  libFuzzer exits the
 * process when the time is up.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "postscript_fdw.h"

PG_MODULE_MAGIC;

extern int	LLVMFuzzerRunDriver(int *argc, char ***argv,
								int (*cb) (const uint8_t *data, size_t size));

static PsTable *fuzz_table;
static MemoryContext fuzz_cxt;
static int64 fuzz_rows;
static int64 fuzz_errors;

static int
one_input(const uint8_t *data, size_t size)
{
	MemoryContext old = MemoryContextSwitchTo(fuzz_cxt);
	Datum	   *values = palloc(sizeof(Datum) * fuzz_table->natts);
	bool	   *nulls = palloc(sizeof(bool) * fuzz_table->natts);

	PG_TRY();
	{
		PsJson	   *root = ps_parse_json((const char *) data, size, 64, "GET", "/fuzz");

		if (json_object_is_type(root, json_type_array))
		{
			for (size_t i = 0; i < json_object_array_length(root); i++)
			{
				ps_record_to_values(fuzz_table, json_object_array_get_idx(root, i),
									values, nulls, NULL);
				fuzz_rows++;
			}
		}
		else
		{
			ps_record_to_values(fuzz_table, root, values, nulls, NULL);
			fuzz_rows++;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(fuzz_cxt);
		FlushErrorState();
		fuzz_errors++;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	MemoryContextReset(fuzz_cxt);
	return 0;
}

PG_FUNCTION_INFO_V1(postscript_fdw_fuzz_rows);

Datum
postscript_fdw_fuzz_rows(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *args = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	  **argv = palloc(sizeof(char *) * 64);
	int			argc = 0;

	fuzz_table = ps_get_table(relid);
	fuzz_cxt = AllocSetContextCreate(TopMemoryContext, "fuzz input", ALLOCSET_DEFAULT_SIZES);
	argv[argc++] = "postscript_fdw_fuzz_rows";
	for (char *tok = strtok(args, " "); tok != NULL && argc < 63; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	LLVMFuzzerRunDriver(&argc, &argv, one_input);
	/* libFuzzer normally exits the process itself */
	elog(LOG, "fuzz: " INT64_FORMAT " rows converted, " INT64_FORMAT " inputs refused",
		 fuzz_rows, fuzz_errors);
	PG_RETURN_VOID();
}
