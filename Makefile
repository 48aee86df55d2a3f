# twilio_numbers — PGXS build.
EXTENSION = twilio_numbers
# the version is written once, in the control file (as pgsql-http does)
EXTVERSION = $(shell grep -m1 '^default_version' $(EXTENSION).control | sed -e "s/^default_version *= *'\(.*\)'/\1/")
MODULE_big = twilio_numbers
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))

# The install script of the current version is built from the schema's area
# files, in the order they must run (each needs only what comes before it).
# The scripts of earlier versions and the upgrade scripts are kept as they
# shipped: CREATE EXTENSION ... VERSION and ALTER EXTENSION ... UPDATE run them.
SCHEMA = catalog accounts owned_numbers ledger periods attempts queue incarnation purchases hosted addresses bundles lost_replies \
	billing reconcile adoption reports messaging monitoring operations integrity roles
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = sql/$(EXTENSION)--0.1.sql $(wildcard sql/$(EXTENSION)--*--*.sql)

# pg_regress suite (sql/<name>.sql, expected/<name>.out), in the order it
# runs: setup first (the emulator's controls as SQL), then the rest.  Against
# a running server with the extension preloaded and the Twilio emulator as
# Twilio (README "Testing and the emulator"; test/check makes one).
REGRESS = setup billing catalog_errors catalog_pricing catalog_search faults hosted hostile lifecycle money \
	purchase search_reuse regulatory addresses bundles reports roles secrets sharing messaging trust operations
REGRESS_OPTS = --inputdir=. --outputdir=test/regress_out --load-extension=twilio_numbers

# TAP tests (test/t/*.pl, PostgreSQL::Test::Cluster: each starts its own
# clusters and emulator): make prove_installcheck.  make installcheck runs
# them after the pg_regress suite, as PGXS does; TAP_TESTS= leaves them out.
TAP_TESTS = 1
PROVE_TESTS ?= test/t/*.pl

PG_CONFIG ?= pg_config
CURL_CONFIG ?= curl-config

PG_CPPFLAGS = $(shell $(CURL_CONFIG) --cflags) -I$(srcdir)/src -DEXTVERSION=\"$(EXTVERSION)\"
# warnings are errors where the tests build (make WERROR=1, as test/lib.sh
# does), never in a user's or a package's build: a newer compiler's new
# warning must not break an install
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare \
	$(if $(filter 1,$(WERROR)),-Werror)
SHLIB_LINK = $(shell $(CURL_CONFIG) --libs)
# Only what PostgreSQL looks up is exported: the magic block, _PG_init, the
# SQL-callable functions (each has a PG_FUNCTION_INFO_V1) with their
# pg_finfo_ records, and the background workers' entry points (*_main).  The
# list is made from the sources, so a new function is exported by declaring
# it the way PostgreSQL requires anyway.
EXPORTS_MAP = src/exports.map
SHLIB_LINK += -Wl,--version-script=$(EXPORTS_MAP)

EXTRA_CLEAN = test/regress_out $(EXPORTS_MAP)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# (after PGXS, whose "all" must stay the default goal)
# PGXS does not track header dependencies: every object depends on every header
# (and on the Makefile, which says EXTVERSION)
$(OBJS): $(wildcard src/*.h) Makefile $(EXTENSION).control

$(EXPORTS_MAP): $(patsubst %.o,%.c,$(OBJS))
	{ echo '{ global: Pg_magic_func; _PG_init; *_main;'; \
	  sed -n 's/^PG_FUNCTION_INFO_V1(\([A-Za-z0-9_]*\));.*/\1; pg_finfo_\1;/p' $^; \
	  echo 'local: *; };'; } > $@
$(shlib): $(EXPORTS_MAP)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(patsubst %,sql/schema/%.sql,$(SCHEMA)) Makefile
	{ printf '%s\n' '-- $(EXTENSION) $(EXTVERSION) — install script, built by make from sql/schema/ (edit those files)' \
	    '-- complain if script is sourced in psql, rather than via CREATE EXTENSION' \
	    '\echo Use "CREATE EXTENSION $(EXTENSION)" to load this file. \quit'; \
	  for f in $(patsubst %,sql/schema/%.sql,$(SCHEMA)); do echo; cat $$f; done; } > $@

# The TAP tests' helpers (test/t/TwilioNumbersTest.pm) and the credentials
# they start the emulator with: test/lib.sh's unless the environment says.
override PROVE_FLAGS += -I test/t
export TN_ROOT ?= $(abspath $(srcdir))
export TN_ACCOUNT_SID ?= AC0123456789abcdef0123456789abcdef
export TN_AUTH_TOKEN ?= tok3n-s3cret-0f-the-test-account
export TN_API_KEY ?= SK00000000000000000000000000000001
export TN_API_SECRET ?= ap1-s3cret-0f-the-test-key

prove_installcheck:
	$(prove_installcheck)

# the regress tests, for scripts that run a subset (test/check dates)
print-regress:
	@echo $(REGRESS)
.PHONY: prove_installcheck print-regress
