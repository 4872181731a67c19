/* ns per almost_raft_node_receive of a heartbeat, from C. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "almost_raft.h"

static void noop(void *u, const char *t, size_t tl, const uint8_t *b, size_t l) { (void)u; (void)t; (void)tl; (void)b; (void)l; }

int main(void) {
    /* heartbeat, term 1, from "l" to "f" (docs/wire.md) */
    const uint8_t hb[] = {1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'l', 1, 'f'};
    almost_raft_config *config;
    almost_raft_node *node;
    almost_raft_callbacks cb = {NULL, noop, NULL, NULL, NULL};
    struct timespec a, b;
    int i, n = 200000;
    almost_raft_config_new("f", 1, &config);
    almost_raft_config_add_peer(config, "l", 1);
    if (almost_raft_node_new(config, cb, &node) != ALMOST_RAFT_OK) return 1;
    almost_raft_config_free(config);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < n; i++) almost_raft_node_receive(node, hb, sizeof hb);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
    almost_raft_node_free(node);
    return 0;
}
