# postscript_fdw -- PGXS build.  `make PG_CONFIG=/path/to/pg_config` to pick a server.
MODULE_big = postscript_fdw
OBJS = \
	postscript_fdw.o \
	src/resources.o \
	src/options.o \
	src/connection.o \
	src/http.o \
	src/gunzip.o \
	src/api_error.o \
	src/json_conv.o \
	src/json_stream.o \
	src/pagescan.o \
	src/deparse.o \
	src/import.o \
	src/modify.o \
	src/write_queue.o \
	src/validate.o \
	src/phone.o \
	src/querystring.o \
	src/ratelimit.o \
	src/stats.o \
	src/webhook.o \
	src/webhook_worker.o \
	src/reference.o
PGFILEDESC = "postscript_fdw - foreign data wrapper for the Postscript SMS API"

EXTENSION = postscript_fdw
DATA = postscript_fdw--1.0.sql postscript_fdw--1.0--1.1.sql postscript_fdw--1.1--1.2.sql

# libmicrohttpd: the webhook receiver's HTTP server (src/webhook_worker.c);
# libdeflate: gzip bodies decoded whole (src/gunzip.c)
SHLIB_LINK += -lcurl -ljson-c -lmicrohttpd -ldeflate
PG_CPPFLAGS += -I$(srcdir)/src

# pg_regress tests; they need the local API server (see scripts/test.sh),
# whose URL reaches them through the PS_MOCK_URL environment variable.
REGRESS = setup import options read pagination errors auth pushdown joins collation pushdown_diff writes examples resilience security webhooks sync parser limiter
REGRESS_OPTS = --inputdir=$(srcdir)

# ASSERTS=1: the extension's Assert()s are checked, as in a server built with
# --enable-cassert (the server's own stay as they were built).  The test
# suite builds so (scripts/test.sh); a production build leaves it off.
ifeq ($(ASSERTS),1)
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: a changed struct must rebuild every
# object that uses it, or objects disagree about its layout
$(OBJS): $(srcdir)/src/postscript_fdw.h $(srcdir)/src/pg_compat.h
src/phone.o: $(srcdir)/src/phone.h
src/modify.o src/validate.o: $(srcdir)/src/validate.h
$(OBJS): $(srcdir)/src/pagescan.h
src/querystring.o src/deparse.o src/http.o: $(srcdir)/src/querystring.h
src/gunzip.o src/http.o: $(srcdir)/src/gunzip.h

# docs/reference.md, rendered from the catalog in a throwaway cluster
# (scripts/gen_reference.sh); scripts/checks/reference.sh fails when it is stale
reference:
	PG_CONFIG="$$(command -v $(PG_CONFIG))" bash $(srcdir)/scripts/gen_reference.sh
.PHONY: reference
