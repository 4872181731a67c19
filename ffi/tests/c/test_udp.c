/* Three nodes on the built-in UDP transport, in one process, with a shared key: no send
 * callback, no receive call. They elect; the leader is freed (it hands over); the two others
 * agree on a leader in a higher term. Waits are on leader callbacks; the guard bounds a hang. */
#include "udp.h"

#define N 3

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static char known[N][ALMOST_RAFT_ID_BUF_LEN];
static uint64_t terms[N];
static int indexes[N] = {0, 1, 2};

static void on_leader(void *userdata, bool has_leader, const char *leader, size_t len, uint64_t term) {
    int i = *(int *)userdata;
    pthread_mutex_lock(&lock);
    snprintf(known[i], sizeof known[i], "%.*s", has_leader ? (int)len : 0, leader);
    terms[i] = term;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}


/* Waits until the nodes in `alive` agree on a leader in a term above `after`; returns its index. */
static int agreed(const int *alive, uint64_t after) {
    struct timespec guard = deadline_in(30);
    int leader = -1;
    pthread_mutex_lock(&lock);
    for (;;) {
        int ok = known[alive[0]][0] != '\0' && terms[alive[0]] > after;
        for (int k = 1; alive[k] >= 0 && ok; k++)
            ok = strcmp(known[alive[k]], known[alive[0]]) == 0 && terms[alive[k]] == terms[alive[0]];
        if (ok) {
            leader = known[alive[0]][0] - 'a';
            break;
        }
        CHECK(pthread_cond_timedwait(&changed, &lock, &guard) == 0);
    }
    pthread_mutex_unlock(&lock);
    return leader;
}

int main(void) {
    const char *ids[N] = {"a", "b", "c"};
    const char *key = "almost-raft test key, not secret";
    int ports[N];
    almost_raft_node *nodes[N];
    char addr[64];
    for (int i = 0; i < N; i++) ports[i] = free_port();
    for (int i = 0; i < N; i++) {
        almost_raft_config *config = NULL;
        almost_raft_callbacks cb = {&indexes[i], NULL, on_leader, NULL, NULL}; /* no send */
        CHECK_OK(almost_raft_config_new(ids[i], 1, &config));
        CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 150));
        CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 50));
        CHECK_OK(almost_raft_config_add_key(config, (const uint8_t *)key, strlen(key)));
        snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[i]);
        CHECK_OK(almost_raft_config_set_listen(config, addr, strlen(addr)));
        for (int j = 0; j < N; j++) {
            if (j == i) continue;
            snprintf(addr, sizeof addr, "localhost:%d", ports[j]);
            CHECK_OK(almost_raft_config_add_peer_at(config, ids[j], 1, addr, strlen(addr)));
        }
        CHECK_OK(almost_raft_node_new(config, cb, &nodes[i]));
        almost_raft_config_free(config);
    }
    int all[N + 1] = {0, 1, 2, -1};
    int leader = agreed(all, 0);
    uint64_t term = terms[leader];
    printf("udp: %s leads term %llu\n", ids[leader], (unsigned long long)term);

    almost_raft_node_free(nodes[leader]); /* hands over first */
    int rest[N], k = 0;
    for (int i = 0; i < N; i++)
        if (i != leader) rest[k++] = i;
    rest[k] = -1;
    int next = agreed(rest, term);
    CHECK(next != leader);
    printf("udp: after freeing the leader, %s leads term %llu\n", ids[next], (unsigned long long)terms[next]);
    for (int i = 0; i < N; i++) {
        almost_raft_status status;
        if (i == leader) continue;
        CHECK_OK(almost_raft_node_status(nodes[i], &status, NULL, 0));
        CHECK(status.unauthenticated == 0);
        almost_raft_node_free(nodes[i]);
    }
    printf("test_udp: ok\n");
    return 0;
}
