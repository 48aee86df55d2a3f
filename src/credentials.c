/*
 * credentials.c — the Twilio credentials every request uses, and keeping
 * secrets out of the server log.
 *
 * Credentials come from twilio_numbers.credentials_file when it is set: a
 * file outside the data directory, owned by the server's user (or root) and
 * closed to others as PostgreSQL requires of ssl_key_file, holding lines
 *     account_sid = AC...
 *     auth_token  = ...        (or api_key = SK... and api_secret = ...)
 * It is read when first needed and again after every configuration reload
 * (the setting's assign hook marks it stale; backends and both background
 * workers reload), so a token is rotated by rewriting the file and running
 * pg_reload_conf(): the secret never passes through SQL, the configuration
 * files, pg_stat_statements or the log, and a copy of the data directory
 * carries none.  Without the file, the settings twilio_numbers.account_sid,
 * auth_token, api_key and api_secret are used, as before.
 *
 * The settings route writes the secret into postgresql.conf or
 * postgresql.auto.conf, and PostgreSQL itself logs a changed setting's new
 * value ("parameter ... changed to ...", LOG in the postmaster, DEBUG2 in
 * every other process) whatever the setting's flags.  An emit_log_hook,
 * installed in the postmaster and so inherited by every process, rewrites
 * any log message that names a secret setting (or contains the secret in
 * use) before it is written: the value is cut out.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "credentials.h"
#include "settings.h"

/* the setting */
char	   *tn_credentials_file = NULL;

/* what the file said (malloc'd; NULL when the file does not say it) */
static char *file_account_sid = NULL;
static char *file_auth_token = NULL;
static char *file_api_key = NULL;
static char *file_api_secret = NULL;
static bool file_stale = true;
/* why the last read failed (malloc'd), NULL when it did not */
static char *file_problem = NULL;

static emit_log_hook_type prev_emit_log_hook = NULL;

/* the credentials_file setting changed or was applied again by a reload */
static void
assign_credentials_file(const char *newval, void *extra)
{
	file_stale = true;
}

/* Forget a malloc'd secret, overwriting it first. */
static void
forget(char **s)
{
	if (*s)
	{
		explicit_bzero(*s, strlen(*s));
		free(*s);
		*s = NULL;
	}
}

static void
forget_file(void)
{
	forget(&file_account_sid);
	forget(&file_auth_token);
	forget(&file_api_key);
	forget(&file_api_secret);
}

static char *
strdup_or_die(const char *s)
{
	char	   *r = strdup(s);

	if (r == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	return r;
}

/*
 * Is path inside the data directory?  Both are made absolute and resolved
 * (symbolic links included) first.
 */
static bool
inside_data_directory(const char *path)
{
	char	   *real_file = realpath(path, NULL);
	char	   *real_data = realpath(DataDir, NULL);
	bool		inside = false;

	if (real_file && real_data)
	{
		size_t		n = strlen(real_data);

		inside = strncmp(real_file, real_data, n) == 0 && (real_file[n] == '/' || real_file[n] == '\0');
	}
	free(real_file);
	free(real_data);
	return inside;
}

/*
 * Check the file as PostgreSQL checks ssl_key_file: a regular file, owned
 * by the server's user or root, u=rw (0600) or less when the server's user
 * owns it, u=rw,g=r (0640) or less when root does.  Returns NULL when it
 * passes, else the problem (palloc'd).
 */
static char *
check_file(const char *path, struct stat *st)
{
	if (!is_absolute_path(path))
		return psprintf("\"%s\" is not an absolute path.", path);
	if (stat(path, st) != 0)
		return psprintf("Could not stat \"%s\": %m.", path);
	if (!S_ISREG(st->st_mode))
		return psprintf("\"%s\" is not a regular file.", path);
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return psprintf("\"%s\" must be owned by the database user or root.", path);
	if ((st->st_uid == geteuid() && (st->st_mode & (S_IRWXG | S_IRWXO))) ||
		(st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
		return psprintf("\"%s\" has group or world access; it must have permissions u=rw (0600) or less "
						"if owned by the database user, or u=rw,g=r (0640) or less if owned by root.", path);
	if (inside_data_directory(path))
		return psprintf("\"%s\" is inside the data directory, which every copy and backup of the cluster carries.",
						path);
	return NULL;
}

/* Trim spaces and one pair of matching quotes, in place. */
static char *
trim_value(char *s)
{
	char	   *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		*--e = '\0';
	if (e - s >= 2 && (s[0] == '\'' || s[0] == '"') && e[-1] == s[0])
	{
		e[-1] = '\0';
		s++;
	}
	return s;
}

/*
 * Read and parse the file into the file_* values.  Returns NULL on success,
 * else the problem (palloc'd) — never the file's contents.
 */
static char *
read_file(const char *path)
{
	struct stat st;
	char	   *problem;
	FILE	   *f;
	char		line[1024];
	int			lineno = 0;

	problem = check_file(path, &st);
	if (problem)
		return problem;
	f = AllocateFile(path, "r");
	if (f == NULL)
		return psprintf("Could not open \"%s\": %m.", path);
	while (fgets(line, sizeof(line), f) != NULL)
	{
		char	   *eq;
		char	   *key;
		char	   *value;
		char	  **slot = NULL;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f))
		{
			problem = psprintf("Line %d of \"%s\" is too long.", lineno, path);
			break;
		}
		key = trim_value(line);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL)
		{
			problem = psprintf("Line %d of \"%s\" is not \"name = value\".", lineno, path);
			break;
		}
		*eq = '\0';
		value = trim_value(eq + 1);
		key = trim_value(key);
		if (pg_strcasecmp(key, "account_sid") == 0)
			slot = &file_account_sid;
		else if (pg_strcasecmp(key, "auth_token") == 0)
			slot = &file_auth_token;
		else if (pg_strcasecmp(key, "api_key") == 0)
			slot = &file_api_key;
		else if (pg_strcasecmp(key, "api_secret") == 0)
			slot = &file_api_secret;
		else
		{
			problem = psprintf("Line %d of \"%s\" names \"%s\"; the names are account_sid, auth_token, "
							   "api_key and api_secret.", lineno, path, key);
			break;
		}
		forget(slot);
		if (*value != '\0')
			*slot = strdup_or_die(value);
	}
	explicit_bzero(line, sizeof(line));
	FreeFile(f);
	if (problem == NULL && file_auth_token == NULL && file_api_key == NULL)
		problem = psprintf("\"%s\" holds neither auth_token nor api_key.", path);
	else if (problem == NULL && file_api_key != NULL && file_api_secret == NULL)
		problem = psprintf("\"%s\" holds api_key without api_secret.", path);
	return problem;
}

/*
 * Make the credentials current: read the file again if a reload (or the
 * first use) asks for it.  Raises when the file is set but unusable; the
 * settings are not used instead, so a broken file never falls back silently.
 */
void
credentials_load(void)
{
	if (file_stale)
	{
		char	   *problem = NULL;

		forget_file();
		if (file_problem)
		{
			free(file_problem);
			file_problem = NULL;
		}
		if (tn_credentials_file && tn_credentials_file[0] != '\0')
			problem = read_file(tn_credentials_file);
		if (problem)
		{
			forget_file();
			file_problem = strdup_or_die(problem);
		}
		file_stale = false;
	}
	if (file_problem)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("could not read the Twilio credentials from twilio_numbers.credentials_file"),
				 errdetail_internal("%s", file_problem),
				 errhint("Fix the file, then run SELECT pg_reload_conf(). Nothing was sent to Twilio.")));
}

/* After a configuration reload in a process that runs its own loop. */
void
credentials_mark_stale(void)
{
	file_stale = true;
}

static bool
using_file(void)
{
	return tn_credentials_file && tn_credentials_file[0] != '\0';
}

const char *
credentials_account_sid(void)
{
	if (using_file() && file_account_sid)
		return file_account_sid;
	return tn_account_sid_setting ? tn_account_sid_setting : "";
}

const char *
credentials_auth_token(void)
{
	if (using_file())
		return file_auth_token ? file_auth_token : "";
	return tn_auth_token_setting ? tn_auth_token_setting : "";
}

const char *
credentials_api_key(void)
{
	if (using_file())
		return file_api_key ? file_api_key : "";
	return tn_api_key_setting ? tn_api_key_setting : "";
}

const char *
credentials_api_secret(void)
{
	if (using_file())
		return file_api_secret ? file_api_secret : "";
	return tn_api_secret_setting ? tn_api_secret_setting : "";
}

/* Where the credentials in use come from, for the worker's start line. */
const char *
credentials_source(void)
{
	return using_file() ? "twilio_numbers.credentials_file" : "settings";
}

/* ---- the log ------------------------------------------------------------ */

static const char *const secret_settings[] = {
	"twilio_numbers.auth_token",
	"twilio_numbers.api_secret",
};

/* case-insensitive strstr */
static const char *
find_ci(const char *haystack, const char *needle)
{
	size_t		n = strlen(needle);

	for (const char *p = haystack; *p; p++)
		if (pg_strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

static bool
names_secret(const char *s)
{
	for (int i = 0; i < lengthof(secret_settings); i++)
		if (find_ci(s, secret_settings[i]))
			return true;
	return false;
}

/*
 * A log text with secrets cut out, or NULL when it has none: everything
 * after a secret setting's name (where its value is), and any occurrence of
 * a secret in use.  Runs inside error reporting: no ereport, allocation in
 * ErrorContext only.  The hook's changes reach the client too (PostgreSQL
 * sends the same ErrorData to both), so a message that merely names the
 * setting, as the refusal to show it does, is left alone.
 */
static char *
redacted(const char *s)
{
	const char *secrets[4];
	int			nsecrets = 0;
	const char *cut = NULL;
	char	   *out = NULL;

	if (s == NULL)
		return NULL;
	for (int i = 0; i < lengthof(secret_settings); i++)
	{
		const char *p = find_ci(s, secret_settings[i]);

		if (p)
		{
			p += strlen(secret_settings[i]);
			if (*p == '"')
				p++;
			/* only the name, nothing after it (a refusal to show it): kept */
			if (*p != '\0' && (cut == NULL || p < cut))
				cut = p;
		}
	}
	if (cut)
	{
		size_t		keep = cut - s;
		const char *tail = " ... (the rest is not logged: it may hold a twilio_numbers secret)";

		out = MemoryContextAlloc(ErrorContext, keep + strlen(tail) + 1);
		memcpy(out, s, keep);
		strcpy(out + keep, tail);
		s = out;
	}

	/* the secrets in use, wherever they appear */
	secrets[nsecrets++] = tn_auth_token_setting;
	secrets[nsecrets++] = tn_api_secret_setting;
	secrets[nsecrets++] = file_auth_token;
	secrets[nsecrets++] = file_api_secret;
	for (int i = 0; i < nsecrets; i++)
	{
		const char *secret = secrets[i];
		const char *p;
		size_t		len;

		if (secret == NULL || (len = strlen(secret)) < 6)
			continue;
		while ((p = strstr(s, secret)) != NULL)
		{
			size_t		before = p - s;
			char	   *n = MemoryContextAlloc(ErrorContext, strlen(s) - len + 8 + 1);

			memcpy(n, s, before);
			memcpy(n + before, "********", 8);
			strcpy(n + before + 8, p + len);
			s = out = n;
		}
	}
	return out;
}

static void
redact_field(char **field)
{
	char	   *r = redacted(*field);

	if (r)
		*field = r;
}

/* emit_log_hook: cut secrets out of whatever goes to the server log. */
static void
redact_log(ErrorData *edata)
{
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
	if (!edata->output_to_server)
		return;
	redact_field(&edata->message);
	redact_field(&edata->detail);
	redact_field(&edata->detail_log);
	redact_field(&edata->hint);
	redact_field(&edata->context);
	redact_field(&edata->internalquery);
	/* the STATEMENT: line log_min_error_statement adds is the query's text */
	if (debug_query_string && (names_secret(debug_query_string) || redacted(debug_query_string) != NULL))
		edata->hide_stmt = true;
}

/* The setting and, when preloaded, the log hook (module.c calls it). */
void
credentials_init(bool preloaded)
{
	DefineCustomStringVariable("twilio_numbers.credentials_file",
							   "File holding the Twilio account SID and auth token (or API key and secret).",
							   "Outside the data directory, readable only by the server's user; re-read at reload.",
							   &tn_credentials_file, "",
							   PGC_SIGHUP, 0, NULL, assign_credentials_file, NULL);
	if (preloaded)
	{
		prev_emit_log_hook = emit_log_hook;
		emit_log_hook = redact_log;
	}
}
