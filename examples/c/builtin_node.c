/* A node on the library's own UDP transport, in C: no socket code in the application.
 *
 *   builtin_node <id> <listen-host:port> <peer-id>@<host:port> [more peers...]
 *
 * e.g. builtin_node a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003, and the same for b
 * and c. With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable by its
 * owner only) every message is signed, and unsigned or forged ones are refused.
 * Prints a JSON line per leader change. SIGTERM or Ctrl-C frees the node; a leader hands
 * over first.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "almost_raft.h"

/* Runs on a library thread, in order. */
static void on_leader(void *userdata, bool has_leader, const char *leader, size_t leader_len, uint64_t term) {
    (void)userdata;
    if (has_leader) {
        printf("{\"term\": %llu, \"leader\": \"%.*s\"}\n", (unsigned long long)term, (int)leader_len, leader);
    } else {
        printf("{\"term\": %llu, \"leader\": null}\n", (unsigned long long)term);
    }
    fflush(stdout);
}

static int fail(const char *what, almost_raft_result code) {
    char message[512];
    almost_raft_last_error_message(message, sizeof message);
    fprintf(stderr, "%s: %s: %s\n", what, almost_raft_result_str(code), message);
    return 1;
}

int main(int argc, char **argv) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks callbacks = {NULL, NULL, on_leader, NULL, NULL};
    const char *key_file = getenv("ALMOST_RAFT_KEY_FILE");
    almost_raft_result rc;
    sigset_t stop_signals;
    int i, sig;

    if (argc < 3) {
        fprintf(stderr, "usage: %s <id> <listen-host:port> <peer-id>@<host:port>...\n", argv[0]);
        return 2;
    }
    if ((rc = almost_raft_config_new(argv[1], strlen(argv[1]), &config)) != ALMOST_RAFT_OK) return fail("id", rc);
    if ((rc = almost_raft_config_set_listen(config, argv[2], strlen(argv[2]))) != ALMOST_RAFT_OK) return fail("listen", rc);
    for (i = 3; i < argc; i++) {
        const char *at = strchr(argv[i], '@');
        if (at == NULL) {
            fprintf(stderr, "bad peer %s: expected <id>@<host:port>\n", argv[i]);
            return 2;
        }
        rc = almost_raft_config_add_peer_at(config, argv[i], (size_t)(at - argv[i]), at + 1, strlen(at + 1));
        if (rc != ALMOST_RAFT_OK) return fail("peer", rc);
    }
    almost_raft_config_set_election_timeout_ms(config, 150);
    almost_raft_config_set_heartbeat_interval_ms(config, 50);
    almost_raft_config_set_min_nodes(config, (size_t)argc - 2);
    if (key_file != NULL && (rc = almost_raft_config_set_key_file(config, key_file, strlen(key_file))) != ALMOST_RAFT_OK)
        return fail("key file", rc);
    /* Blocked before the node starts, so its threads inherit the mask and sigwait gets them. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    rc = almost_raft_node_new(config, callbacks, &node);
    almost_raft_config_free(config);
    if (rc != ALMOST_RAFT_OK) return fail("start", rc);

    sigwait(&stop_signals, &sig); /* the election runs on the library's threads meanwhile */
    almost_raft_node_free(node); /* a leader hands over here */
    return 0;
}
