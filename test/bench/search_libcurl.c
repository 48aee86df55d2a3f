/*
 * search_libcurl.c — the bare libcurl client of test/bench/search.
 *
 * It sends exactly the requests numbers_search sends in the benchmark: the
 * URLs (taken from the extension's own call log, so query strings match to
 * the byte), the same basic auth and Accept header, over ONE easy handle
 * reused for every request (so one kept-alive connection), and reads each
 * whole body into a growable buffer.  It does nothing with the body: it does
 * not parse the JSON, look up a price or build rows.  That is exactly the
 * work the extension does on top of the HTTP exchange (jsonb parsing, the
 * price_list/pricing_cache look-ups, text/numeric datums, the tuplestore,
 * plus the SQL call itself), i.e. the overhead the benchmark's ratio
 * measures.
 *
 *   search_libcurl URL_FILE CALLS [WARMUP_CALLS]
 *
 * URL_FILE holds one absolute URL per line; call i fetches URL i mod count.
 * Credentials come from the environment (TN_BENCH_USER, TN_BENCH_PASSWORD),
 * not the command line.  Before timing, every URL is fetched once (its
 * "phone_number" keys counted, so the script can check that both clients
 * got the same replies), then WARMUP_CALLS more untimed calls are made.
 * Prints key=value lines: calls, seconds, calls_per_s, bytes, rows (what the
 * N calls' replies hold, counted in the untimed first pass over the URLs),
 * connects (new connections opened while
 * timed: 0 means keep-alive held), cpu_s (user+system of this process while
 * timed) and, when TN_BENCH_WATCH_PID names a process (the emulator), its
 * CPU seconds (all its threads) over the same timed loop as watched_cpu_s.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>

typedef struct Buffer
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buffer;

static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Buffer	   *b = userdata;
	size_t		n = size * nmemb;

	if (b->len + n + 1 > b->cap)
	{
		size_t		cap = b->cap ? b->cap : 16384;
		char	   *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL)
			return 0;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * CPU seconds of process pid, all its threads, from
 * /proc/PID/task/TID/schedstat (nanoseconds); -1 if unreadable
 */
static double
proc_cpu_s(const char *pid)
{
	char		path[64];
	DIR		   *d;
	struct dirent *e;
	double		ns = 0;

	if (pid == NULL)
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/task", pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
	{
		char		stat[300];
		FILE	   *f;
		unsigned long long run;

		if (e->d_name[0] == '.')
			continue;
		snprintf(stat, sizeof(stat), "/proc/%s/task/%s/schedstat", pid, e->d_name);
		if ((f = fopen(stat, "r")) == NULL)
			continue;			/* the thread is gone */
		if (fscanf(f, "%llu", &run) == 1)
			ns += (double) run;
		fclose(f);
	}
	closedir(d);
	return ns / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* One GET of url; exits on any failure (a benchmark must not count errors). */
static void
fetch(CURL *h, Buffer *b, const char *url)
{
	CURLcode	rc;
	long		status = 0;

	b->len = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
	{
		fprintf(stderr, "search_libcurl: %s: %s\n", url, curl_easy_strerror(rc));
		exit(1);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
	{
		fprintf(stderr, "search_libcurl: %s: HTTP %ld\n", url, status);
		exit(1);
	}
}

static long
count_rows(const Buffer *b)
{
	static const char key[] = "\"phone_number\":";
	long		n = 0;

	for (const char *p = b->data; p && (p = strstr(p, key)) != NULL; p += sizeof(key) - 1)
		n++;
	return n;
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	  **urls = NULL;
	long	   *rows_of = NULL;
	int			nurls = 0;
	char		line[4096];
	long		calls;
	long		warmup;
	const char *user = getenv("TN_BENCH_USER");
	const char *password = getenv("TN_BENCH_PASSWORD");
	const char *watch = getenv("TN_BENCH_WATCH_PID");
	CURL	   *h;
	struct curl_slist *headers;
	Buffer		b = {0};
	long		rows = 0;
	long		connects = 0;
	double		bytes = 0;
	double		t0,
				t1,
				c0,
				c1,
				w0,
				w1;

	if (argc < 3 || argc > 4 || user == NULL || password == NULL)
	{
		fprintf(stderr, "usage: TN_BENCH_USER=... TN_BENCH_PASSWORD=... "
				"search_libcurl URL_FILE CALLS [WARMUP_CALLS]\n");
		return 2;
	}
	calls = atol(argv[2]);
	warmup = argc > 3 ? atol(argv[3]) : 0;

	if ((f = fopen(argv[1], "r")) == NULL)
	{
		perror(argv[1]);
		return 1;
	}
	while (fgets(line, sizeof(line), f))
	{
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		urls = realloc(urls, sizeof(char *) * (nurls + 1));
		urls[nurls++] = strdup(line);
	}
	fclose(f);
	if (nurls == 0)
	{
		fprintf(stderr, "search_libcurl: no URLs in %s\n", argv[1]);
		return 1;
	}
	rows_of = calloc(nurls, sizeof(long));

	curl_global_init(CURL_GLOBAL_ALL);
	h = curl_easy_init();
	headers = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_USERNAME, user);
	curl_easy_setopt(h, CURLOPT_PASSWORD, password);
	curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);

	/* every URL once: the rows each reply holds */
	for (int i = 0; i < nurls; i++)
	{
		fetch(h, &b, urls[i]);
		rows_of[i] = count_rows(&b);
	}
	for (long i = 0; i < warmup; i++)
		fetch(h, &b, urls[i % nurls]);

	w0 = proc_cpu_s(watch);
	c0 = cpu_s();
	t0 = now_s();
	for (long i = 0; i < calls; i++)
	{
		long		n = 0;

		fetch(h, &b, urls[i % nurls]);
		bytes += b.len;
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n);
		connects += n;
	}
	t1 = now_s();
	c1 = cpu_s();
	w1 = proc_cpu_s(watch);

	for (long i = 0; i < calls; i++)
		rows += rows_of[i % nurls];

	printf("calls=%ld\n", calls);
	printf("seconds=%.6f\n", t1 - t0);
	printf("calls_per_s=%.1f\n", calls / (t1 - t0));
	printf("bytes=%.0f\n", bytes);
	printf("rows=%ld\n", rows);
	printf("connects=%ld\n", connects);
	printf("cpu_s=%.6f\n", c1 - c0);
	if (w0 >= 0 && w1 >= 0)
		printf("watched_cpu_s=%.6f\n", w1 - w0);

	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	curl_global_cleanup();
	return 0;
}
