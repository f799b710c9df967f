// Shifts CLOCK_REALTIME by PULLSKETCH_CLOCK_SHIFT_S seconds for the process it is preloaded into
// (LD_PRELOAD): a host whose clock is wrong, for scripts/chaos and the end-to-end tests.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

int clock_gettime(clockid_t clock, struct timespec *ts) {
    static int (*real)(clockid_t, struct timespec *);
    if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, ts);
    const char *shift = getenv("PULLSKETCH_CLOCK_SHIFT_S");
    if (result == 0 && shift && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) ts->tv_sec += atol(shift);
    return result;
}
