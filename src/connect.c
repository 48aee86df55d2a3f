/*
 * connect.c — the background worker and the attempt recorder connect to
 * twilio_numbers.database, and wait quietly while it does not exist.
 *
 * A background process connects once, at start, and a missing database is
 * a FATAL at that moment; the postmaster then restarts the process every
 * few seconds, each time with another FATAL (22 in 13 s were seen before a
 * DBA ran CREATE DATABASE).  So a process marks in shared memory that it is
 * connecting; a process that finds the mark of its predecessor (which died
 * connecting) connects to no database instead, logs one line, and looks
 * for the database in pg_database every second; once it exists, the
 * process exits so that the postmaster starts it again, and that start
 * connects.  The same small piece of shared memory holds the outage episode
 * the queue's processes share (worker.c).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "connect.h"
#include "credentials.h"
#include "settings.h"

typedef struct ConnectState
{
	volatile bool connecting[CONNECT_SLOTS];	/* a process of this kind is connecting (or died doing it) */
	pg_atomic_uint32 outage;	/* the outage episode the queue is in (worker.c), 0: none */
} ConnectState;

static ConnectState *state = NULL;

Size
connect_shmem_size(void)
{
	return MAXALIGN(sizeof(ConnectState));
}

/* At shared memory set-up (a crash restart clears the marks). */
void
connect_shmem_init(void)
{
	bool		found;

	state = ShmemInitStruct("twilio_numbers connect", sizeof(ConnectState), &found);
	if (!found)
	{
		memset(state, 0, sizeof(ConnectState));
		pg_atomic_init_u32(&state->outage, 0);
	}
}

/* The outage episode the background processes share (0: none). */
int
connect_outage_get(void)
{
	return state ? (int) pg_atomic_read_u32(&state->outage) : 0;
}

/* Set it; returns what it was (so that one process reports each change). */
int
connect_outage_exchange(int episode)
{
	return state ? (int) pg_atomic_exchange_u32(&state->outage, (uint32) episode) : 0;
}

/* Wait, connected to no database, until tn_database exists; then exit to be restarted. */
static void
wait_for_database(int which, const char *who)
{
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	ereport(LOG,
			(errmsg("%s: waiting for database \"%s\" to be created (twilio_numbers.database)", who, tn_database)));
	for (;;)
	{
		bool		exists;

		CHECK_FOR_INTERRUPTS();
		connect_reload_if_pending();
		StartTransactionCommand();
		exists = OidIsValid(get_database_oid(tn_database, true));
		CommitTransactionCommand();
		if (exists)
		{
			ereport(LOG, (errmsg("%s: database \"%s\" exists; restarting to connect to it", who, tn_database)));
			state->connecting[which] = false;
			proc_exit(1);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* Connect to twilio_numbers.database, or wait for it (see above). */
void
connect_to_database(int which, const char *who)
{
	if (state != NULL && state->connecting[which])
		wait_for_database(which, who);
	if (state != NULL)
		state->connecting[which] = true;
	BackgroundWorkerInitializeConnection(tn_database, NULL, 0);
	if (state != NULL)
		state->connecting[which] = false;
}

/*
 * A background process's SIGHUP: the settings read again, and the
 * credentials with them (at the next request: the file may have changed).
 */
void
connect_reload_if_pending(void)
{
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		credentials_mark_stale();
	}
}
