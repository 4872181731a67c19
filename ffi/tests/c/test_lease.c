/* The leader lease from C: three nodes on the built-in UDP transport; the leader's
 * lease_changed callback says it holds the lease, its status says how much is left (and the
 * followers' that they hold none); when both followers are freed no message reaches the
 * leader any more, and lease_changed still says the lease is lost, in the same term.
 * Invalid lease settings are refused. Waits are on callbacks; the guard bounds a hang. */
#include "udp.h"

#define N 3

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int holder = -1;        /* the node that holds the lease, -1 when none */
static uint64_t lease_term;    /* the term of the last lease gained */
static uint64_t gained[N];     /* each node's term of the last lease it gained */
static int lost_by = -1;       /* the node that last lost its lease */
static int indexes[N] = {0, 1, 2};

static void on_lease(void *userdata, bool held, uint64_t term) {
    int i = *(int *)userdata;
    pthread_mutex_lock(&lock);
    if (held) {
        holder = i;
        lease_term = term;
        gained[i] = term;
    } else {
        CHECK(term == gained[i]);
        if (holder == i) holder = -1;
        lost_by = i;
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}


static void refuses_invalid_lease_settings(void) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.send = ignore_send;
    CHECK_OK(almost_raft_config_new("x", 1, &config));
    CHECK_OK(almost_raft_config_set_drift_bound_ppm(config, 500001));
    CHECK_CODE(almost_raft_node_new(config, cb, &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("drift_bound_ppm"));
    CHECK_OK(almost_raft_config_set_drift_bound_ppm(config, 50000));
    CHECK_OK(almost_raft_config_set_lease_margin_ms(config, 905)); /* the lease is 904 ms */
    CHECK_CODE(almost_raft_node_new(config, cb, &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("lease_margin_ms"));
    almost_raft_config_free(config);
}

int main(void) {
    const char *ids[N] = {"a", "b", "c"};
    int ports[N];
    almost_raft_node *nodes[N];
    char addr[64];
    refuses_invalid_lease_settings();
    for (int i = 0; i < N; i++) ports[i] = free_port();
    for (int i = 0; i < N; i++) {
        almost_raft_config *config = NULL;
        almost_raft_callbacks cb;
        memset(&cb, 0, sizeof cb);
        cb.userdata = &indexes[i];
        cb.lease_changed = on_lease;
        CHECK_OK(almost_raft_config_new(ids[i], 1, &config));
        /* Long enough that a slow run (valgrind) keeps one leader while the test looks. */
        CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 1000));
        CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 100));
        CHECK_OK(almost_raft_config_set_lease_margin_ms(config, 20));
        snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[i]);
        CHECK_OK(almost_raft_config_set_listen(config, addr, strlen(addr)));
        for (int j = 0; j < N; j++) {
            if (j == i) continue;
            snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[j]);
            CHECK_OK(almost_raft_config_add_peer_at(config, ids[j], 1, addr, strlen(addr)));
        }
        CHECK_OK(almost_raft_node_new(config, cb, &nodes[i]));
        almost_raft_config_free(config);
    }
    struct timespec guard = deadline_in(30);
    pthread_mutex_lock(&lock);
    while (holder < 0) CHECK(pthread_cond_timedwait(&changed, &lock, &guard) == 0);
    int leader = holder;
    uint64_t term = lease_term;
    pthread_mutex_unlock(&lock);
    printf("lease: %s holds the lease of term %llu\n", ids[leader], (unsigned long long)term);

    for (int i = 0; i < N; i++) {
        almost_raft_status status;
        CHECK_OK(almost_raft_node_status(nodes[i], &status, NULL, 0));
        /* No other node holds a lease of that term; a later term may have begun since. */
        if (i != leader) CHECK(status.lease_remaining_ms == -1 || status.term > term);
    }
    for (int i = 0; i < N; i++)
        if (i != leader) almost_raft_node_free(nodes[i]);
    pthread_mutex_lock(&lock);
    while (lost_by != leader) CHECK(pthread_cond_timedwait(&changed, &lock, &guard) == 0);
    pthread_mutex_unlock(&lock);
    almost_raft_status status;
    CHECK_OK(almost_raft_node_status(nodes[leader], &status, NULL, 0));
    CHECK(status.lease_remaining_ms == -1);
    printf("lease: with no follower left, %s lost it (as %s)\n", ids[leader],
           status.role == ALMOST_RAFT_LEADER ? "leader still" : "follower");
    almost_raft_node_free(nodes[leader]);
    printf("test_lease: ok\n");
    return 0;
}
