#ifndef PULLSKETCH_CCURRENTCPU_SHIM_H
#define PULLSKETCH_CCURRENTCPU_SHIM_H
/* glibc declares sched_getcpu only for _GNU_SOURCE, which Swift's Glibc module does not define. */
#ifdef __linux__
#define _GNU_SOURCE
#include <sched.h>
#endif

/* The CPU the calling thread runs on, or -1 where that is not known. */
static inline int pullsketch_current_cpu(void) {
#ifdef __linux__
    return sched_getcpu();
#else
    return -1;
#endif
}
#endif
