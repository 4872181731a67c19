/* A 3-node cluster whose send callback hands bytes straight to the peer's receive (so
 * receive runs inside a send callback): it elects one leader agreed by all, transfers
 * leadership, replaces a freed leader with a higher term, and a node frees itself from
 * inside its own callback. Callbacks of one node never overlap; userdata is freed once. */
#include "harness.h"

#define N 3
#define GUARD_SECONDS 120

typedef struct cluster cluster;

typedef struct member {
    cluster *c;
    int index;
    char id[8];
    almost_raft_node *node; /* NULL once freed; guarded by c->lock */
    int has_leader;
    char leader[ALMOST_RAFT_MAX_ID_LEN + 1];
    uint64_t term;
    int in_callback;
    int userdata_freed;
    int free_inside; /* free this node from inside its next leader callback */
} member;

struct cluster {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    member m[N];
    int overlaps;
};

static void enter(member *m) {
    if (m->in_callback) m->c->overlaps++;
    m->in_callback = 1;
}

static void on_send(void *userdata, const char *to, size_t to_len, const uint8_t *bytes, size_t len) {
    member *m = (member *)userdata;
    cluster *c = m->c;
    int i;
    pthread_mutex_lock(&c->lock);
    enter(m);
    for (i = 0; i < N; i++) {
        member *peer = &c->m[i];
        if (peer->node != NULL && strlen(peer->id) == to_len && memcmp(peer->id, to, to_len) == 0) {
            (void)almost_raft_node_receive(peer->node, bytes, len);
        }
    }
    m->in_callback = 0;
    pthread_mutex_unlock(&c->lock);
}

static void on_leader(void *userdata, bool has_leader, const char *leader, size_t leader_len, uint64_t term) {
    member *m = (member *)userdata;
    cluster *c = m->c;
    pthread_mutex_lock(&c->lock);
    enter(m);
    CHECK(leader_len <= ALMOST_RAFT_MAX_ID_LEN);
    CHECK(term >= m->term); /* the fencing token never goes down */
    m->has_leader = has_leader;
    memcpy(m->leader, leader, leader_len);
    m->leader[leader_len] = '\0';
    m->term = term;
    if (m->free_inside && has_leader) {
        almost_raft_node_free(m->node); /* returns at once: we are inside its callback */
        m->node = NULL;
        m->free_inside = 0;
    }
    m->in_callback = 0;
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static void on_free(void *userdata) {
    member *m = (member *)userdata;
    pthread_mutex_lock(&m->c->lock);
    m->userdata_freed++;
    pthread_cond_broadcast(&m->c->changed);
    pthread_mutex_unlock(&m->c->lock);
}

/* The leader every live node agrees on in a term above `after`, or -1. Lock held. */
static int agreed(cluster *c, uint64_t after) {
    int i, leader = -1, first = -1;
    for (i = 0; i < N; i++) {
        if (c->m[i].node == NULL) continue;
        if (!c->m[i].has_leader || c->m[i].term <= after) return -1;
        if (first < 0) first = i;
        if (strcmp(c->m[i].leader, c->m[first].leader) != 0 || c->m[i].term != c->m[first].term) return -1;
    }
    for (i = 0; i < N && first >= 0; i++) {
        if (strcmp(c->m[i].id, c->m[first].leader) == 0) leader = i;
    }
    return leader;
}

static int wait_agreed(cluster *c, uint64_t after) {
    struct timespec guard = deadline_in(GUARD_SECONDS);
    int leader;
    pthread_mutex_lock(&c->lock);
    while ((leader = agreed(c, after)) < 0) {
        CHECK(pthread_cond_timedwait(&c->changed, &c->lock, &guard) == 0);
    }
    pthread_mutex_unlock(&c->lock);
    return leader;
}

static void free_member(cluster *c, int i) {
    almost_raft_node *node;
    pthread_mutex_lock(&c->lock);
    node = c->m[i].node;
    c->m[i].node = NULL; /* no callback reaches it any more */
    pthread_mutex_unlock(&c->lock);
    almost_raft_node_free(node);
    pthread_mutex_lock(&c->lock);
    CHECK(c->m[i].userdata_freed == 1); /* freed exactly once, before free returned */
    pthread_mutex_unlock(&c->lock);
}

int main(void) {
    static cluster c;
    int i, j, leader, target;
    uint64_t term;
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.changed, NULL);
    for (i = 0; i < N; i++) {
        sprintf(c.m[i].id, "c%d", i + 1);
        c.m[i].c = &c;
        c.m[i].index = i;
    }
    pthread_mutex_lock(&c.lock); /* no callback may deliver before every node is registered */
    for (i = 0; i < N; i++) {
        almost_raft_config *config = NULL;
        almost_raft_callbacks callbacks;
        memset(&callbacks, 0, sizeof callbacks);
        CHECK_OK(almost_raft_config_new(c.m[i].id, strlen(c.m[i].id), &config));
        for (j = 0; j < N; j++) {
            if (j != i) CHECK_OK(almost_raft_config_add_peer(config, c.m[j].id, strlen(c.m[j].id)));
        }
        CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 150));
        CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 50));
        CHECK_OK(almost_raft_config_set_cluster(config, "c-test", 6));
        callbacks.userdata = &c.m[i];
        callbacks.send = on_send;
        callbacks.leader_changed = on_leader;
        callbacks.free_userdata = on_free;
        CHECK_OK(almost_raft_node_new(config, callbacks, &c.m[i].node));
        almost_raft_config_free(config);
    }
    pthread_mutex_unlock(&c.lock);

    leader = wait_agreed(&c, 0);
    term = c.m[leader].term;
    printf("elected: %s leads term %llu, agreed by all\n", c.m[leader].id, (unsigned long long)term);
    {
        almost_raft_status status;
        char buf[ALMOST_RAFT_MAX_ID_LEN + 1];
        CHECK_OK(almost_raft_node_status(c.m[leader].node, &status, buf, sizeof buf));
        CHECK(status.role == ALMOST_RAFT_LEADER && status.has_leader && strcmp(buf, c.m[leader].id) == 0);
        CHECK(status.peer_count == 2 && status.waiting_for_nodes == 0);
        /* The same status as in every language: id, vote, when the leader was heard, stopped. */
        CHECK(strcmp(status.id, c.m[leader].id) == 0 && strcmp(status.voted_for, c.m[leader].id) == 0);
        CHECK(status.since_leader_heard_ms == 0 && !status.stopped && status.failure == ALMOST_RAFT_OK);
    }

    target = (leader + 1) % N;
    CHECK_OK(almost_raft_node_transfer_leadership(c.m[leader].node, c.m[target].id, strlen(c.m[target].id)));
    leader = wait_agreed(&c, term);
    CHECK(leader == target);
    term = c.m[leader].term;
    printf("transferred: %s leads term %llu\n", c.m[leader].id, (unsigned long long)term);

    free_member(&c, leader);
    leader = wait_agreed(&c, term);
    term = c.m[leader].term;
    printf("after freeing the leader: %s leads term %llu\n", c.m[leader].id, (unsigned long long)term);

    /* The other survivor frees itself inside the callback that tells it it leads. */
    target = -1;
    for (i = 0; i < N; i++) {
        if (c.m[i].node != NULL && i != leader) target = i;
    }
    pthread_mutex_lock(&c.lock);
    c.m[target].free_inside = 1;
    pthread_mutex_unlock(&c.lock);
    CHECK_OK(almost_raft_node_transfer_leadership(c.m[leader].node, NULL, 0));
    {
        struct timespec guard = deadline_in(GUARD_SECONDS);
        pthread_mutex_lock(&c.lock);
        while (c.m[target].userdata_freed == 0) {
            CHECK(pthread_cond_timedwait(&c.changed, &c.lock, &guard) == 0);
        }
        CHECK(c.m[target].node == NULL && c.m[target].userdata_freed == 1);
        pthread_mutex_unlock(&c.lock);
    }
    printf("%s freed itself inside its callback\n", c.m[target].id);

    free_member(&c, leader);
    for (i = 0; i < N; i++) CHECK(c.m[i].userdata_freed == 1);
    CHECK(c.overlaps == 0);
    pthread_cond_destroy(&c.changed);
    pthread_mutex_destroy(&c.lock);
    printf("test_cluster: ok\n");
    return 0;
}
