/* Shared helpers of the C tests: checks that report the failing line and the last error. */
#ifndef HARNESS_H
#define HARNESS_H

#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "almost_raft.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            char last_[512];                                                               \
            almost_raft_last_error_message(last_, sizeof last_);                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,        \
                    __LINE__, #cond, last_);                                               \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_CODE(call, code)                                                             \
    do {                                                                                   \
        almost_raft_result got_ = (call);                                                  \
        if (got_ != (code)) {                                                              \
            char last_[512];                                                               \
            almost_raft_last_error_message(last_, sizeof last_);                           \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (last error: %s)\n",  \
                    __FILE__, __LINE__, #call, (int)got_, almost_raft_result_str(got_),    \
                    (int)(code), last_);                                                   \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_OK(call) CHECK_CODE(call, ALMOST_RAFT_OK)

/* Whether the last error message on this thread contains `needle`. */
static inline int last_error_contains(const char *needle) {
    char buf[512];
    almost_raft_last_error_message(buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

/* A deadline `seconds` from now, for pthread_cond_timedwait: a hang guard, not a timing test. */
static inline struct timespec deadline_in(int seconds) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += seconds;
    return t;
}

/* A send callback for nodes whose messages go nowhere. */
static inline void ignore_send(void *userdata, const char *to, size_t to_len, const uint8_t *bytes,
                               size_t len) {
    (void)userdata;
    (void)to;
    (void)to_len;
    (void)bytes;
    (void)len;
}

#endif
