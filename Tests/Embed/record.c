/*
 * Records pulls through libpullsketch from several threads, checks the result codes of invalid
 * input, and that a forked child is refused the parent's tracker until it opens its own.
 *   record CONFIG PROCESS THREADS PULLS
 * Thread t records PULLS pulls into repository embed/c<PROCESS>, pull i by tag v<i % 20>, a GET
 * unless i % 3 == 0 (a HEAD); the forked child records 100 GETs of tag "child". Exits 0 when every
 * call answered as expected.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pullsketch.h"

static pullsketch *tracker;
static char repository[64];
static int pulls;
static int failures;

#define EXPECT(call, code)                                                                       \
    do {                                                                                         \
        int answered = (call);                                                                   \
        if (answered != (code)) {                                                                \
            fprintf(stderr, "%s answered %d (%s), not %d\n", #call, answered,                    \
                    pullsketch_describe(answered), (code));                                      \
            __atomic_add_fetch(&failures, 1, __ATOMIC_RELAXED);                                  \
        }                                                                                        \
    } while (0)

static void *record_pulls(void *unused) {
    (void)unused;
    char tag[16];
    for (int i = 0; i < pulls; i++) {
        snprintf(tag, sizeof tag, "v%d", i % 20);
        EXPECT(pullsketch_record(tracker, repository, tag, NULL, i % 3 ? "GET" : "HEAD", NULL, 0), PULLSKETCH_OK);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: record CONFIG PROCESS THREADS PULLS\n");
        return 2;
    }
    char error[256];
    tracker = pullsketch_open(argv[1], error, sizeof error);
    if (!tracker) {
        fprintf(stderr, "open: %s\n", error);
        return 1;
    }
    snprintf(repository, sizeof repository, "embed/c%s", argv[2]);
    int threads = atoi(argv[3]);
    pulls = atoi(argv[4]);
    const char *digest = "sha256:4444444444444444444444444444444444444444444444444444444444444444";

    EXPECT(pullsketch_record(NULL, repository, "v1", NULL, "GET", NULL, 0), PULLSKETCH_INVALID_HANDLE);
    EXPECT(pullsketch_record(tracker, "Embed/Upper", "v1", NULL, "GET", NULL, 0), PULLSKETCH_INVALID_REPOSITORY);
    EXPECT(pullsketch_record(tracker, NULL, "v1", NULL, "GET", NULL, 0), PULLSKETCH_INVALID_REPOSITORY);
    EXPECT(pullsketch_record(tracker, repository, "v 1", NULL, "GET", NULL, 0), PULLSKETCH_INVALID_TAG);
    EXPECT(pullsketch_record(tracker, repository, NULL, "sha256:short", "GET", NULL, 0), PULLSKETCH_INVALID_DIGEST);
    EXPECT(pullsketch_record(tracker, repository, "v1", NULL, "GET", "md5", 0), PULLSKETCH_INVALID_DIGEST);
    EXPECT(pullsketch_record(tracker, repository, "v1", NULL, "POST", NULL, 0), PULLSKETCH_INVALID_METHOD);
    EXPECT(pullsketch_record(tracker, repository, "v1", NULL, NULL, NULL, 0), PULLSKETCH_INVALID_METHOD);
    EXPECT(pullsketch_record(tracker, repository, NULL, NULL, "GET", NULL, 0), PULLSKETCH_NO_REFERENCE);
    EXPECT(pullsketch_record(tracker, repository, "v1", NULL, "GET", digest, -5), PULLSKETCH_INVALID_TIME);

    pid_t child = fork();
    if (child == 0) {
        int refused = pullsketch_record(tracker, repository, "child", NULL, "GET", NULL, 0) == PULLSKETCH_FORKED
            && pullsketch_close(tracker) == PULLSKETCH_FORKED;
        pullsketch *own = pullsketch_open(argv[1], error, sizeof error);
        int recorded = own != NULL;
        for (int i = 0; own && i < 100; i++) recorded &= pullsketch_record(own, repository, "child", NULL, "GET", digest, 0) == PULLSKETCH_OK;
        recorded &= own && pullsketch_close(own) == PULLSKETCH_OK;
        _exit(refused && recorded ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the forked child was not refused, or could not record with its own tracker\n");
        failures++;
    }

    pthread_t workers[64];
    if (threads > 64) threads = 64;
    for (int t = 0; t < threads; t++) pthread_create(&workers[t], NULL, record_pulls, NULL);
    for (int t = 0; t < threads; t++) pthread_join(workers[t], NULL);
    EXPECT(pullsketch_close(tracker), PULLSKETCH_OK);
    return failures ? 1 : 0;
}
