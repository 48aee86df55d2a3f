/*
 * seen_numbers.c — numbers this session's searches saw.
 *
 * An application searches (numbers_search), shows the numbers, and buys some
 * of them seconds later.  Before its POSTs, numbers_purchase must know each
 * number's type, address requirement, locality and region, and used to ask
 * Twilio's inventory again (one GET per number) for exactly what the search
 * answered a moment before.  So each row numbers_search returns is remembered
 * here, in this backend's memory, and a purchase takes the number's entry
 * instead of the GET while it is younger than twilio_numbers.search_reuse_s
 * (0: never).
 *
 * Why it is safe.  A look-up is itself only a snapshot: a number can be sold
 * between the look-up and the POST, and the POST's refusal (Twilio 21422,
 * TN002) already handles that — all or nothing, the others compensated,
 * nothing charged.  A search a few seconds old is the same kind of snapshot.
 * Everything checked before the POST is still checked, with the search's
 * answer: the price (from the type searched), the address requirement (a
 * number that needs an address is refused before any POST, as after a
 * look-up).  An entry is only trusted for the Twilio account and API it was
 * seen at (the table is emptied when they change), for the country and a
 * type the number can have, and only once: a purchase takes its numbers'
 * entries out whatever then happens, so a second purchase of the same number
 * looks it up (or takes a newer search's word).  Nothing here is shared
 * between backends or survives the session; nothing here is a secret (the
 * API URL and account SID, which anyone who may search can see).
 *
 * The table is bounded: at most SEEN_MAX numbers; a search that would pass
 * that first forgets the entries too old to be used, then, if still full,
 * everything.
 */
#include "postgres.h"

#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "seen_numbers.h"
#include "settings.h"

#define SEEN_MAX 10000
#define SEEN_PHONE_LEN 20		/* E.164: '+' and at most 15 digits */
#define SEEN_SHORT_LEN 16		/* iso, type, address_requirements */
#define SEEN_PLACE_LEN 128		/* locality, region */

typedef struct SeenEntry
{
	char		phone[SEEN_PHONE_LEN];	/* the key */
	TimestampTz seen_at;
	char		iso[SEEN_SHORT_LEN];
	char		type[SEEN_SHORT_LEN];
	char		address_requirements[SEEN_SHORT_LEN];
	char		locality[SEEN_PLACE_LEN];
	char		region[SEEN_PLACE_LEN];
	bool		has_address_requirements;
	bool		has_locality;
	bool		has_region;
} SeenEntry;

static HTAB *seen = NULL;

/* where the entries were seen: the API URL and the account, "url|AC..." */
static char *seen_origin = NULL;

/* The Twilio the session talks to now (palloc'd in the current context). */
static char *
current_origin(void)
{
	return psprintf("%s|%s", tn_api_url ? tn_api_url : "", tn_account_sid);
}

/* Forget every entry. */
static void
forget_all(void)
{
	if (seen)
		hash_destroy(seen);
	seen = NULL;
}

/* The table, made on first use (its own context under TopMemoryContext). */
static HTAB *
seen_table(void)
{
	if (seen == NULL)
	{
		HASHCTL		ctl = {0};

		ctl.keysize = SEEN_PHONE_LEN;
		ctl.entrysize = sizeof(SeenEntry);
		seen = hash_create("twilio_numbers seen numbers", 256, &ctl, HASH_ELEM | HASH_STRINGS);
	}
	return seen;
}

/* An entry young enough to be used at now. */
static bool
is_fresh(const SeenEntry *e, TimestampTz now)
{
	return tn_search_reuse_s > 0 && e->seen_at <= now &&
		!TimestampDifferenceExceeds(e->seen_at, now, tn_search_reuse_s * 1000);
}

/* Make room for one more entry: drop the stale ones, or all if none is. */
static void
make_room(void)
{
	HASH_SEQ_STATUS scan;
	SeenEntry  *e;
	TimestampTz now = GetCurrentTimestamp();

	hash_seq_init(&scan, seen);
	while ((e = hash_seq_search(&scan)) != NULL)
		if (!is_fresh(e, now))
			(void) hash_search(seen, e->phone, HASH_REMOVE, NULL);
	if (hash_get_num_entries(seen) >= SEEN_MAX)
		forget_all();
}

/* Copy s into buf of size len; false if it does not fit. */
static bool
copy_text(char *buf, size_t len, const char *s, bool *has)
{
	*has = (s != NULL);
	if (s == NULL)
	{
		buf[0] = '\0';
		return true;
	}
	if (strlen(s) >= len)
		return false;
	strcpy(buf, s);
	return true;
}

/*
 * A search is about to return rows: its numbers belong to the Twilio the
 * session talks to now (entries from another are forgotten).
 */
void
seen_numbers_search_start(void)
{
	char	   *origin = current_origin();

	if (seen_origin == NULL || strcmp(seen_origin, origin) != 0)
	{
		forget_all();
		if (seen_origin)
			pfree(seen_origin);
		seen_origin = MemoryContextStrdup(TopMemoryContext, origin);
	}
	pfree(origin);
}

/*
 * numbers_search returned this number, seen at seen_at: remember it (unless
 * search_reuse_s is 0).  A value too long for the entry, or a phone number
 * that is not one, is not remembered (a purchase then looks the number up).
 */
void
seen_numbers_remember(const char *phone, const char *iso, const char *type,
					  const char *address_requirements, const char *locality,
					  const char *region, TimestampTz seen_at)
{
	SeenEntry	entry;
	SeenEntry  *e;
	bool		found;
	bool		has_iso;
	bool		has_type;
	HTAB	   *table;

	/* with search_reuse_s = 0 nothing would be taken: keep nothing */
	if (tn_search_reuse_s == 0 ||
		phone == NULL || phone[0] != '+' || strlen(phone) >= SEEN_PHONE_LEN ||
		iso == NULL || type == NULL)
		return;
	table = seen_table();
	memset(&entry, 0, sizeof(entry));
	strcpy(entry.phone, phone);
	entry.seen_at = seen_at;
	if (!copy_text(entry.iso, SEEN_SHORT_LEN, iso, &has_iso) ||
		!copy_text(entry.type, SEEN_SHORT_LEN, type, &has_type) ||
		!copy_text(entry.address_requirements, SEEN_SHORT_LEN, address_requirements,
				   &entry.has_address_requirements) ||
		!copy_text(entry.locality, SEEN_PLACE_LEN, locality, &entry.has_locality) ||
		!copy_text(entry.region, SEEN_PLACE_LEN, region, &entry.has_region))
	{
		/* an older word about it is not kept either */
		(void) hash_search(table, entry.phone, HASH_REMOVE, NULL);
		return;
	}

	if (hash_search(table, entry.phone, HASH_FIND, NULL) == NULL &&
		hash_get_num_entries(table) >= SEEN_MAX)
	{
		make_room();
		table = seen_table();
	}
	e = hash_search(table, entry.phone, HASH_ENTER, &found);
	memcpy(e, &entry, sizeof(entry));
}

/*
 * A purchase is about to buy phone: take its entry out of the table (a later
 * purchase must not trust it), and return true with what the search saw
 * (palloc'd in the current context) if it is younger than search_reuse_s and
 * was seen at the Twilio the session talks to now.
 */
bool
seen_numbers_take(const char *phone, SeenNumber *out)
{
	char		key[SEEN_PHONE_LEN];
	SeenEntry  *e;
	bool		usable;
	char	   *origin;

	if (seen == NULL || strlen(phone) >= SEEN_PHONE_LEN)
		return false;
	memset(key, 0, sizeof(key));
	strcpy(key, phone);
	e = hash_search(seen, key, HASH_FIND, NULL);
	if (e == NULL)
		return false;

	origin = current_origin();
	usable = is_fresh(e, GetCurrentTimestamp()) &&
		seen_origin != NULL && strcmp(seen_origin, origin) == 0;
	pfree(origin);
	if (usable)
	{
		out->iso = pstrdup(e->iso);
		out->type = pstrdup(e->type);
		out->address_requirements = e->has_address_requirements ? pstrdup(e->address_requirements) : NULL;
		out->locality = e->has_locality ? pstrdup(e->locality) : NULL;
		out->region = e->has_region ? pstrdup(e->region) : NULL;
	}
	(void) hash_search(seen, key, HASH_REMOVE, NULL);
	return usable;
}
