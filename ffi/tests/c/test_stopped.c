/* A node that removed itself from its cluster has stopped: it answers ALMOST_RAFT_CLOSED to
 * status and to every other call, as the header says, until it is closed and freed. */
#include "harness.h"

static int freed;
static void count_free(void *userdata) {
    (void)userdata;
    freed++;
}
static void ignore_send(void *userdata, const char *to, size_t to_len, const uint8_t *bytes, size_t len) {
    (void)userdata;
    (void)to;
    (void)to_len;
    (void)bytes;
    (void)len;
}

int main(void) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks cb;
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
    CHECK_CODE(almost_raft_node_status(node, &status, leader, sizeof leader), ALMOST_RAFT_CLOSED);
    CHECK(last_error_contains("stopped"));
    CHECK_CODE(almost_raft_node_status(node, &status, NULL, 0), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_add_peer(node, "other", 5), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_remove_peer(node, "peer", 4), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_transfer_leadership(node, NULL, 0), ALMOST_RAFT_CLOSED);
    CHECK(almost_raft_node_receive(node, garbage, sizeof garbage) != ALMOST_RAFT_OK);

    CHECK_OK(almost_raft_node_close(node));
    CHECK(freed == 1);
    CHECK_CODE(almost_raft_node_status(node, &status, NULL, 0), ALMOST_RAFT_CLOSED);
    almost_raft_node_free(node);
    CHECK(freed == 1);
    printf("test_stopped: ok\n");
    return 0;
}
