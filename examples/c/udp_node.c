/* A real almost-raft node over UDP, in C.
 *
 *   udp_node <id> <listen-host:port> <peer-id>@<host:port> [more peers...]
 *
 * e.g. in three terminals:
 *   udp_node a 127.0.0.1:7001 b@127.0.0.1:7002 c@127.0.0.1:7003
 *   udp_node b 127.0.0.1:7002 a@127.0.0.1:7001 c@127.0.0.1:7003
 *   udp_node c 127.0.0.1:7003 a@127.0.0.1:7001 b@127.0.0.1:7002
 * With ALMOST_RAFT_KEY_FILE naming a key file (hex keys, one per line, readable by its owner
 * only), every message is signed and unsigned or forged ones are refused.
 * Each prints the leader it knows, with the term, as JSON lines. Stop one with SIGTERM or
 * Ctrl-C (SIGINT): a leader hands over, prints {"term": T, "leader": "<id>", "event": "handover"},
 * and keeps running until it hears the new leader (at most HANDOVER_WAIT_MS; a second signal
 * stops it at once). Then it frees the node and exits.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "almost_raft.h"

#define MAX_PEERS 16
#define HANDOVER_WAIT_MS 300 /* two election timeouts */

typedef struct peer {
    char id[ALMOST_RAFT_MAX_ID_LEN + 1];
    struct sockaddr_in addr;
} peer;

typedef struct app {
    int sock;
    peer peers[MAX_PEERS];
    int peer_count;
} app;

static volatile sig_atomic_t signals;
static void on_signal(int sig) {
    (void)sig;
    signals++;
}

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The node's role, and whether it knows a leader; 0 when the call fails (a closed node). */
static int node_status(almost_raft_node *node, almost_raft_status *status) {
    return almost_raft_node_status(node, status, NULL, 0) == ALMOST_RAFT_OK;
}

/* A stopping node: 1 when it handed over (and printed so), 0 when it leads but no peer has
 * answered in its term yet (try again after the next datagram), -1 when it has nothing to
 * hand over (it does not lead) or cannot. */
static int hand_over(almost_raft_node *node, const char *id) {
    almost_raft_status status;
    almost_raft_result rc;
    if (!node_status(node, &status) || status.role != ALMOST_RAFT_LEADER) return -1;
    rc = almost_raft_node_transfer_leadership(node, NULL, 0);
    if (rc == ALMOST_RAFT_NO_PEERS) return 0; /* a leader elected just now */
    if (rc != ALMOST_RAFT_OK) return -1;
    printf("{\"term\": %llu, \"leader\": \"%s\", \"event\": \"handover\"}\n", (unsigned long long)status.term, id);
    fflush(stdout);
    return 1;
}

/* A peer leads: the handover completed. */
static int peer_leads(almost_raft_node *node) {
    almost_raft_status status;
    return !node_status(node, &status) || (status.has_leader && status.role != ALMOST_RAFT_LEADER);
}

static int parse_addr(const char *text, struct sockaddr_in *addr) {
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((unsigned short)atoi(colon + 1));
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

/* Runs on a library thread: hand the datagram to the socket and return. */
static void on_send(void *userdata, const char *to, size_t to_len, const uint8_t *bytes, size_t len) {
    app *a = (app *)userdata;
    int i;
    for (i = 0; i < a->peer_count; i++) {
        if (strlen(a->peers[i].id) == to_len && memcmp(a->peers[i].id, to, to_len) == 0) {
            (void)sendto(a->sock, bytes, len, 0, (const struct sockaddr *)&a->peers[i].addr, sizeof a->peers[i].addr);
        }
    }
}

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
    static app a;
    struct sockaddr_in listen_addr;
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks callbacks = {0};
    almost_raft_result rc;
    long long stop_by = 0; /* once signalled: until when to wait for the handover */
    int handed_over = 0;
    int i;

    if (argc < 3 || parse_addr(argv[2], &listen_addr) != 0) {
        fprintf(stderr, "usage: %s <id> <listen-host:port> <peer-id>@<host:port>...\n", argv[0]);
        return 2;
    }
    a.sock = socket(AF_INET, SOCK_DGRAM, 0);
    if (a.sock < 0 || bind(a.sock, (const struct sockaddr *)&listen_addr, sizeof listen_addr) != 0) {
        perror("bind");
        return 1;
    }
    if ((rc = almost_raft_config_new(argv[1], strlen(argv[1]), &config)) != ALMOST_RAFT_OK) return fail("id", rc);
    for (i = 3; i < argc && a.peer_count < MAX_PEERS; i++) {
        peer *p = &a.peers[a.peer_count];
        const char *at = strchr(argv[i], '@');
        if (at == NULL || (size_t)(at - argv[i]) > ALMOST_RAFT_MAX_ID_LEN || parse_addr(at + 1, &p->addr) != 0) {
            fprintf(stderr, "bad peer %s: expected <id>@<host:port>\n", argv[i]);
            return 2;
        }
        memcpy(p->id, argv[i], (size_t)(at - argv[i]));
        p->id[at - argv[i]] = '\0';
        if ((rc = almost_raft_config_add_peer(config, p->id, strlen(p->id))) != ALMOST_RAFT_OK) return fail("peer", rc);
        a.peer_count++;
    }
    almost_raft_config_set_election_timeout_ms(config, 150);
    almost_raft_config_set_heartbeat_interval_ms(config, 50);
    almost_raft_config_set_min_nodes(config, (size_t)a.peer_count + 1);
    if (getenv("ALMOST_RAFT_KEY_FILE") != NULL) {
        const char *key_file = getenv("ALMOST_RAFT_KEY_FILE");
        if ((rc = almost_raft_config_set_key_file(config, key_file, strlen(key_file))) != ALMOST_RAFT_OK)
            return fail("key file", rc);
    }
    callbacks.userdata = &a;
    callbacks.send = on_send;
    callbacks.leader_changed = on_leader;
    callbacks.free_userdata = NULL;
    rc = almost_raft_node_new(config, callbacks, &node);
    almost_raft_config_free(config);
    if (rc != ALMOST_RAFT_OK) return fail("start", rc);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (;;) {
        uint8_t buf[2048];
        struct pollfd pfd;
        ssize_t n;
        if (signals > 0 && stop_by == 0) stop_by = now_ms() + HANDOVER_WAIT_MS;
        if (stop_by != 0) {
            if (signals > 1 || now_ms() >= stop_by) break; /* a second signal: stop at once */
            if (handed_over && peer_leads(node)) break;    /* the handover completed */
            if (!handed_over && (handed_over = hand_over(node, argv[1])) < 0) break;
        }
        pfd.fd = a.sock;
        pfd.events = POLLIN;
        if (poll(&pfd, 1, stop_by != 0 ? 10 : 200) <= 0) continue;
        n = recv(a.sock, buf, sizeof buf, 0);
        if (n > 0) (void)almost_raft_node_receive(node, buf, (size_t)n); /* bad bytes are refused */
    }
    almost_raft_node_free(node); /* a leader still leading hands over here */
    close(a.sock);
    return 0;
}
