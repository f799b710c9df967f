/*
 * libpullsketch: PullSketch's tracker embedded in any registry process.
 *
 * A handle records manifest pulls in memory (no I/O on the calling thread) and merges them into
 * Redis every merge interval on the library's own threads; a reconciler (`pullsketch reconcile`)
 * writes them to PostgreSQL. Every function is thread-safe, never blocks on Redis, and reports
 * problems as result codes: nothing is thrown or aborted across this boundary.
 *
 * Fork: a handle belongs to the process that opened it. Used in a forked child it answers
 * PULLSKETCH_FORKED and does nothing; pre-fork servers (gunicorn, uWSGI) open it after the fork,
 * in each worker.
 */
#ifndef PULLSKETCH_H
#define PULLSKETCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An open tracker. */
typedef struct pullsketch pullsketch;

/* Result codes. Non-negative: the call did what it says; negative: it changed nothing. */
enum {
    PULLSKETCH_OK = 0,                       /* recorded (or closed) */
    PULLSKETCH_DISABLED = 1,                 /* FEATURE_IMAGE_PULL_STATS is off: nothing recorded */
    PULLSKETCH_INVALID_HANDLE = -1,          /* NULL (a closed handle must not be used again) */
    PULLSKETCH_FORKED = -2,                  /* the handle was opened by the parent process */
    PULLSKETCH_INVALID_REPOSITORY = -3,      /* not an OCI repository name */
    PULLSKETCH_INVALID_TAG = -4,             /* not an OCI tag */
    PULLSKETCH_INVALID_DIGEST = -5,          /* not a digest (algorithm:encoded) */
    PULLSKETCH_INVALID_METHOD = -6,          /* not "GET" or "HEAD" */
    PULLSKETCH_NO_REFERENCE = -7,            /* neither a tag nor a digest */
    PULLSKETCH_INVALID_TIME = -8,            /* a negative time */
};

/*
 * Opens a tracker from `configuration`: the path of a Quay-style config.yaml, or YAML text
 * (docs/operations.md lists the keys; environment variables override them, as for `pullsketch`).
 * Returns NULL when the configuration cannot be used, with the reason in `error` (at most
 * `error_size` bytes, NUL-terminated) when it is not NULL.
 */
pullsketch *pullsketch_open(const char *configuration, char *error, size_t error_size);

/*
 * Records one successful manifest request: `repository` (e.g. "team/app"), the `tag` or the
 * `digest` the client asked for (either may be NULL, not both; a tag wins), `method` "GET" or
 * "HEAD", the digest of the manifest served (NULL when unknown), and its time in milliseconds
 * since the Unix epoch, UTC (0: now). Returns a result code; never blocks.
 */
int pullsketch_record(pullsketch *tracker, const char *repository, const char *tag, const char *digest,
                      const char *method, const char *served_digest, int64_t time_ms);

/*
 * Merges what is still in memory (trying for at most the flusher's grace period, 5 s by default)
 * and frees the tracker. Returns PULLSKETCH_OK, or PULLSKETCH_FORKED (nothing done: the parent's
 * threads do not exist in a child; the memory is left) or PULLSKETCH_INVALID_HANDLE.
 */
int pullsketch_close(pullsketch *tracker);

/* A short English description of a result code; never NULL. */
const char *pullsketch_describe(int code);

#ifdef __cplusplus
}
#endif

#endif
