/* A node that stops by itself (it removed itself from its cluster; its state file cannot be
 * written) still answers status, with `stopped` and `failure` set and no leader, and answers
 * ALMOST_RAFT_CLOSED to every other call, as the header says, until it is closed and freed. */
#include "harness.h"

static int freed;
static void count_free(void *userdata) {
    (void)userdata;
    freed++;
}

#include <unistd.h>


static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stopped_freed;

static void signal_free(void *userdata) {
    (void)userdata;
    pthread_mutex_lock(&lock);
    stopped_freed = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* A heartbeat (round 1) of the leader `from` to "a" in `term` (docs/wire.md, version 3). */
static size_t heartbeat(uint8_t *out, uint64_t term, char from) {
    size_t n = 0;
    out[n++] = 3;
    out[n++] = 5;
    out[n++] = 0;
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(term >> (8 * i));
    out[n++] = 0;
    out[n++] = 1;
    out[n++] = (uint8_t)from;
    out[n++] = 1;
    out[n++] = 'a';
    for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(i == 0);
    return n;
}

/* Defect: a node whose save failed went on answering Leader and said nothing. Now it stops
 * with no leader, ends its callbacks (free_userdata runs), and status says why. */
static void a_save_fails(void) {
    char dir[] = "/tmp/almost-raft-c-XXXXXX";
    char path[64], lock_path[80];
    uint8_t bytes[32];
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks cb = {NULL, ignore_send, NULL, signal_free, NULL};
    almost_raft_status status;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/a.state", dir);
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    CHECK_OK(almost_raft_config_new("a", 1, &config));
    CHECK_OK(almost_raft_config_add_peer(config, "b", 1));
    CHECK_OK(almost_raft_config_set_min_nodes(config, 2));
    CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 60000));
    CHECK_OK(almost_raft_config_set_state_path(config, path, strlen(path)));
    CHECK_OK(almost_raft_node_new(config, cb, &node));
    almost_raft_config_free(config);

    unlink(path); /* the next save (of a higher term) cannot be written */
    CHECK(unlink(lock_path) == 0);
    CHECK(rmdir(dir) == 0);
    CHECK_OK(almost_raft_node_receive(node, bytes, heartbeat(bytes, 5, 'b')));

    struct timespec guard = deadline_in(30);
    pthread_mutex_lock(&lock);
    while (!stopped_freed) CHECK(pthread_cond_timedwait(&changed, &lock, &guard) == 0);
    pthread_mutex_unlock(&lock);
    CHECK_OK(almost_raft_node_status(node, &status, NULL, 0));
    CHECK(status.stopped && status.failure == ALMOST_RAFT_STORAGE && !status.has_leader);
    CHECK(status.role != ALMOST_RAFT_LEADER);
    CHECK_CODE(almost_raft_node_receive(node, bytes, heartbeat(bytes, 6, 'b')), ALMOST_RAFT_CLOSED);
    CHECK_OK(almost_raft_node_close(node));
    CHECK_CODE(almost_raft_node_status(node, &status, NULL, 0), ALMOST_RAFT_CLOSED);
    almost_raft_node_free(node);
}

int main(void) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks cb;
    memset(&cb, 0, sizeof cb);
    almost_raft_status status;
    char leader[ALMOST_RAFT_MAX_ID_LEN + 1];
    const uint8_t garbage[3] = {1, 2, 3};

    CHECK_OK(almost_raft_config_new("me", 2, &config));
    CHECK_OK(almost_raft_config_add_peer(config, "peer", 4));
    cb.userdata = NULL;
    cb.send = ignore_send;
    cb.leader_changed = NULL;
    cb.free_userdata = count_free;
    CHECK_OK(almost_raft_node_new(config, cb, &node));
    almost_raft_config_free(config);
    CHECK_OK(almost_raft_node_status(node, &status, leader, sizeof leader));
    CHECK(status.peer_count == 1);

    CHECK_OK(almost_raft_node_remove_peer(node, "me", 2)); /* removing itself stops it */
    CHECK_OK(almost_raft_node_status(node, &status, leader, sizeof leader));
    CHECK(status.stopped && status.failure == ALMOST_RAFT_OK);
    CHECK(!status.has_leader && leader[0] == '\0');
    CHECK_CODE(almost_raft_node_add_peer(node, "other", 5), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_remove_peer(node, "peer", 4), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_peer_unreachable(node, "peer", 4), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_transfer_leadership(node, NULL, 0), ALMOST_RAFT_CLOSED);
    CHECK(almost_raft_node_receive(node, garbage, sizeof garbage) != ALMOST_RAFT_OK);

    CHECK_OK(almost_raft_node_close(node));
    CHECK(freed == 1);
    CHECK_CODE(almost_raft_node_status(node, &status, NULL, 0), ALMOST_RAFT_CLOSED);
    almost_raft_node_free(node);
    CHECK(freed == 1);

    a_save_fails();
    printf("test_stopped: ok\n");
    return 0;
}
