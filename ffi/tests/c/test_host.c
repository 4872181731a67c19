/* Three hosts of 20 groups each, whose send callback hands datagrams straight to the other
 * host's receive: every group elects one leader that all three know (from the group event
 * callbacks, and the same from almost_raft_host_group_status), a transfer moves one group's
 * leadership in the next term, bad input gets its code, and close hands over, frees the
 * userdata once and makes later calls return ALMOST_RAFT_CLOSED. */
#include "harness.h"

#define HOSTS 3
#define GROUPS 20
#define GUARD_SECONDS 120

typedef struct world world;

typedef struct member {
    world *w;
    char id[4];
    almost_raft_host *host; /* guarded by w->lock */
    char leader[GROUPS][8]; /* "" when none */
    uint64_t term[GROUPS];
    int userdata_freed;
} member;

struct world {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    member m[HOSTS];
};

static void on_send(void *userdata, const char *to, size_t to_len, const uint8_t *bytes, size_t len) {
    member *m = (member *)userdata;
    world *w = m->w;
    int i;
    pthread_mutex_lock(&w->lock);
    for (i = 0; i < HOSTS; i++) {
        member *peer = &w->m[i];
        if (peer->host != NULL && strlen(peer->id) == to_len && memcmp(peer->id, to, to_len) == 0) {
            (void)almost_raft_host_receive(peer->host, bytes, len);
        }
    }
    pthread_mutex_unlock(&w->lock);
}

static void on_event(void *userdata, const char *group, size_t group_len, almost_raft_group_event kind,
                     bool has_leader, const char *leader, size_t leader_len, uint64_t term) {
    member *m = (member *)userdata;
    char name[16] = {0};
    int g;
    if (kind != ALMOST_RAFT_GROUP_LEADER_CHANGED || group_len >= sizeof name) return;
    memcpy(name, group, group_len);
    g = atoi(name + 1);
    pthread_mutex_lock(&m->w->lock);
    memset(m->leader[g], 0, sizeof m->leader[g]);
    if (has_leader && leader_len < sizeof m->leader[g]) memcpy(m->leader[g], leader, leader_len);
    m->term[g] = term;
    pthread_cond_broadcast(&m->w->changed);
    pthread_mutex_unlock(&m->w->lock);
}

static void on_free(void *userdata) {
    ((member *)userdata)->userdata_freed++;
}

/* Whether all three know the same leader of group g (caller holds the lock). */
static int agreed(world *w, int g) {
    int i;
    if (w->m[0].leader[g][0] == 0) return 0;
    for (i = 1; i < HOSTS; i++) {
        if (strcmp(w->m[i].leader[g], w->m[0].leader[g]) != 0 || w->m[i].term[g] != w->m[0].term[g]) return 0;
    }
    return 1;
}

static int all_agreed(world *w) {
    int g;
    for (g = 0; g < GROUPS; g++) {
        if (!agreed(w, g)) return 0;
    }
    return 1;
}

static void wait_until(world *w, int (*done)(world *)) {
    struct timespec guard = deadline_in(GUARD_SECONDS);
    pthread_mutex_lock(&w->lock);
    while (!done(w)) {
        CHECK(pthread_cond_timedwait(&w->changed, &w->lock, &guard) == 0);
    }
    pthread_mutex_unlock(&w->lock);
}

static int moved_g0(world *w) {
    return agreed(w, 0) && strcmp(w->m[0].leader[0], "h2") == 0;
}

int main(void) {
    static world w;
    const char *voters[HOSTS] = {"h1", "h2", "h3"};
    size_t voter_lens[HOSTS] = {2, 2, 2};
    almost_raft_group_status status;
    almost_raft_host_counts stats;
    uint64_t before;
    int i, g;
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.changed, NULL);

    for (i = 0; i < HOSTS; i++) {
        almost_raft_config *config = NULL;
        almost_raft_host_callbacks cb;
        member *m = &w.m[i];
        memset(&cb, 0, sizeof cb);
        m->w = &w;
        snprintf(m->id, sizeof m->id, "h%d", i + 1);
        CHECK_OK(almost_raft_config_new(m->id, strlen(m->id), &config));
        CHECK_OK(almost_raft_config_set_cluster(config, "c-hosts", 7));
        CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 300));
        CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 30));
        cb.userdata = m;
        cb.send = on_send;
        cb.group_event = on_event;
        cb.free_userdata = on_free;
        pthread_mutex_lock(&w.lock);
        CHECK_OK(almost_raft_host_new(config, cb, &m->host));
        pthread_mutex_unlock(&w.lock);
        almost_raft_config_free(config);
    }
    for (i = 0; i < HOSTS; i++) {
        for (g = 0; g < GROUPS; g++) {
            char name[16];
            snprintf(name, sizeof name, "g%d", g);
            CHECK_OK(almost_raft_host_add_group(w.m[i].host, name, strlen(name), voters, voter_lens, HOSTS, NULL, 0));
        }
    }
    wait_until(&w, all_agreed);
    for (g = 0; g < GROUPS; g++) {
        char name[16];
        snprintf(name, sizeof name, "g%d", g);
        CHECK_OK(almost_raft_host_group_status(w.m[1].host, name, strlen(name), &status));
        CHECK(status.has_leader);
        CHECK(status.term >= w.m[1].term[g]);
    }
    CHECK_OK(almost_raft_host_stats(w.m[0].host, &stats));
    CHECK(stats.groups == GROUPS);

    /* Hand g0 to h2 (from whoever leads it), in the next term. */
    pthread_mutex_lock(&w.lock);
    before = w.m[0].term[0];
    for (i = 0; i < HOSTS; i++) {
        if (strcmp(w.m[i].id, w.m[0].leader[0]) == 0 && strcmp(w.m[i].id, "h2") != 0) {
            CHECK_OK(almost_raft_host_transfer_leadership(w.m[i].host, "g0", 2, "h2", 2));
        }
    }
    pthread_mutex_unlock(&w.lock);
    wait_until(&w, moved_g0);
    CHECK(w.m[0].term[0] >= before);

    /* Bad input: each with its code, and nothing changes. */
    CHECK_CODE(almost_raft_host_add_group(w.m[0].host, "g0", 2, voters, voter_lens, HOSTS, NULL, 0), ALMOST_RAFT_GROUP_EXISTS);
    CHECK_CODE(almost_raft_host_add_group(w.m[0].host, "x", 1, voters + 1, voter_lens, 2, NULL, 0), ALMOST_RAFT_UNKNOWN_PEER);
    CHECK_CODE(almost_raft_host_add_group(w.m[0].host, "x", 1, NULL, NULL, 3, NULL, 0), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_host_add_group(w.m[0].host, "", 0, voters, voter_lens, HOSTS, NULL, 0), ALMOST_RAFT_INVALID_ID);
    CHECK_CODE(almost_raft_host_group_status(w.m[0].host, "nope", 4, &status), ALMOST_RAFT_UNKNOWN_GROUP);
    CHECK_CODE(almost_raft_host_remove_group(w.m[0].host, "nope", 4), ALMOST_RAFT_UNKNOWN_GROUP);
    CHECK_CODE(almost_raft_host_receive(w.m[0].host, (const uint8_t *)"\x05junk", 5), ALMOST_RAFT_MALFORMED_MESSAGE);
    CHECK_CODE(almost_raft_host_group_status(w.m[0].host, "g0", 2, NULL), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_host_receive(NULL, NULL, 0), ALMOST_RAFT_NULL_POINTER);
    CHECK_OK(almost_raft_host_stats(w.m[0].host, &stats));
    CHECK(stats.groups == GROUPS);

    /* Close: userdata freed once, then every call is CLOSED. */
    for (i = 0; i < HOSTS; i++) {
        CHECK_OK(almost_raft_host_close(w.m[i].host));
        CHECK(w.m[i].userdata_freed == 1);
    }
    CHECK_CODE(almost_raft_host_add_group(w.m[0].host, "late", 4, voters, voter_lens, HOSTS, NULL, 0), ALMOST_RAFT_CLOSED);
    for (i = 0; i < HOSTS; i++) {
        pthread_mutex_lock(&w.lock);
        almost_raft_host *h = w.m[i].host;
        w.m[i].host = NULL;
        pthread_mutex_unlock(&w.lock);
        almost_raft_host_free(h);
        CHECK(w.m[i].userdata_freed == 1);
    }
    almost_raft_host_free(NULL);
    printf("test_host: ok\n");
    return 0;
}
