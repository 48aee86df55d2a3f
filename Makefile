# twilio_numbers — PGXS build.
EXTENSION = twilio_numbers
MODULE_big = twilio_numbers
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c))
DATA = $(wildcard sql/twilio_numbers--*.sql)

# pg_regress suite (sql/<name>.sql, expected/<name>.out); run by test/check
# against a cluster with the extension preloaded and the Twilio emulator up.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(filter-out sql/twilio_numbers--%,$(wildcard sql/*.sql))))
REGRESS_OPTS = --inputdir=. --outputdir=test/regress_out --load-extension=twilio_numbers

PG_CONFIG ?= pg_config
CURL_CONFIG ?= curl-config

PG_CPPFLAGS = $(shell $(CURL_CONFIG) --cflags) -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = $(shell $(CURL_CONFIG) --libs)

EXTRA_CLEAN = test/regress_out

# PGXS does not track header dependencies: every object depends on every header
$(OBJS): $(wildcard src/*.h)

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# the regress tests, for scripts that run a subset (test/check dates)
print-regress:
	@echo $(REGRESS)
.PHONY: print-regress
