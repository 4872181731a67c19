/* Every bad input returns its documented code and a readable message, and nothing leaks:
 * NULL pointers, invalid UTF-8, empty and oversized ids, malformed bytes, unknown peers,
 * invalid config values, a corrupt state file, calls after close. */
#include "harness.h"

static int freed;
static void count_free(void *userdata) {
    (void)userdata;
    freed++;
}


static almost_raft_callbacks callbacks(void) {
    almost_raft_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.userdata = NULL;
    cb.send = ignore_send;
    cb.leader_changed = NULL;
    cb.free_userdata = count_free;
    return cb;
}

/* A heartbeat on the wire (docs/wire.md): version 3, kind 5, term 1, round 1. */
static size_t heartbeat(uint8_t *out, const char *cluster, const char *from, const char *to) {
    size_t n = 0, i;
    const char *fields[3];
    out[n++] = 3;
    out[n++] = 5;
    out[n++] = 0;
    for (i = 0; i < 7; i++) out[n++] = 0;
    out[n++] = 1;
    fields[0] = cluster;
    fields[1] = from;
    fields[2] = to;
    for (i = 0; i < 3; i++) {
        size_t len = strlen(fields[i]);
        out[n++] = (uint8_t)len;
        memcpy(out + n, fields[i], len);
        n += len;
    }
    for (i = 0; i < 7; i++) out[n++] = 0;
    out[n++] = 1;
    return n;
}

static almost_raft_node *start(const char *id, int min_nodes, int max_nodes) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    CHECK_OK(almost_raft_config_new(id, strlen(id), &config));
    CHECK_OK(almost_raft_config_add_peer(config, "peer", 4));
    CHECK_OK(almost_raft_config_set_min_nodes(config, (size_t)min_nodes));
    CHECK_OK(almost_raft_config_set_max_nodes(config, (size_t)max_nodes));
    CHECK_OK(almost_raft_node_new(config, callbacks(), &node));
    almost_raft_config_free(config);
    return node;
}

int main(void) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    char long_id[300], buf[64];
    uint8_t msg[600];
    size_t n;
    almost_raft_status status;
    int code;

    /* version, result strings, the last-error buffer */
    CHECK(strcmp(almost_raft_version(), ALMOST_RAFT_VERSION) == 0);
    for (code = ALMOST_RAFT_OK; code <= ALMOST_RAFT_PANIC; code++) {
        CHECK(strlen(almost_raft_result_str((almost_raft_result)code)) > 0);
    }

    /* config: NULL pointers, invalid UTF-8, empty and oversized ids */
    CHECK_CODE(almost_raft_config_new(NULL, 3, &config), ALMOST_RAFT_NULL_POINTER);
    CHECK(last_error_contains("id is NULL"));
    CHECK_CODE(almost_raft_config_new("a", 1, NULL), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_config_new("", 0, &config), ALMOST_RAFT_INVALID_ID);
    CHECK(last_error_contains("empty"));
    memset(long_id, 'x', sizeof long_id);
    CHECK_CODE(almost_raft_config_new(long_id, 256, &config), ALMOST_RAFT_INVALID_ID);
    CHECK(last_error_contains("256 bytes"));
    CHECK_CODE(almost_raft_config_new("\xff\xfe", 2, &config), ALMOST_RAFT_INVALID_UTF8);
    CHECK(config == NULL); /* out-parameters are written only on success */
    n = almost_raft_last_error_message(buf, 4);
    CHECK(n > 3 && strlen(buf) == 3); /* truncated, NUL-terminated, full length returned */
    CHECK_CODE(almost_raft_config_set_min_nodes(NULL, 1), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_config_add_peer(NULL, "b", 1), ALMOST_RAFT_NULL_POINTER);
    almost_raft_config_free(NULL);

    CHECK_OK(almost_raft_config_new("node-1", 6, &config));
    CHECK_CODE(almost_raft_config_add_peer(config, "", 0), ALMOST_RAFT_INVALID_ID);
    CHECK_CODE(almost_raft_config_add_peer(config, NULL, 4), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_config_set_cluster(config, "\xc3", 1), ALMOST_RAFT_INVALID_UTF8);

    /* invalid config values: checked when the node starts; userdata is freed even then */
    CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 900));
    freed = 0;
    CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("heartbeat_interval_ms") && freed == 1 && node == NULL);
    CHECK_OK(almost_raft_config_set_heartbeat_interval_ms(config, 100));
    CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 0));
    CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("election_timeout_ms") && freed == 2);
    CHECK_OK(almost_raft_config_set_election_timeout_ms(config, 1000));
    CHECK_OK(almost_raft_config_set_min_nodes(config, 5));
    CHECK_OK(almost_raft_config_set_max_nodes(config, 3));
    CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("max_nodes") && freed == 3);
    CHECK_OK(almost_raft_config_set_max_nodes(config, 0));
    CHECK_OK(almost_raft_config_set_min_nodes(config, 0));
    CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK_OK(almost_raft_config_set_min_nodes(config, 3));
    {
        almost_raft_callbacks no_send = callbacks();
        no_send.send = NULL;
        CHECK_CODE(almost_raft_node_new(config, no_send, &node), ALMOST_RAFT_NULL_POINTER);
        CHECK(last_error_contains("callbacks.send") && freed == 5);
    }
    CHECK_CODE(almost_raft_node_new(NULL, callbacks(), &node), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_node_new(config, callbacks(), NULL), ALMOST_RAFT_NULL_POINTER);
    CHECK(freed == 7);

    /* a corrupt state file refuses to start, naming the file */
    {
        const char *path = "/tmp/almost-raft-c-test-corrupt-state";
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        fputs("not a state file", f);
        fclose(f);
        CHECK_OK(almost_raft_config_set_state_path(config, path, strlen(path)));
        CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_STORAGE);
        CHECK(last_error_contains(path) && last_error_contains("corrupt"));
        remove(path);
        CHECK_OK(almost_raft_config_set_state_path(config, "", 0));
    }
    /* a key of the wrong length fails at start, naming the option */
    CHECK_OK(almost_raft_config_add_key(config, (const uint8_t *)"short", 5));
    CHECK_CODE(almost_raft_node_new(config, callbacks(), &node), ALMOST_RAFT_INVALID_CONFIG);
    CHECK(last_error_contains("keys") && last_error_contains("5 bytes"));
    CHECK_CODE(almost_raft_config_add_key(config, NULL, 16), ALMOST_RAFT_NULL_POINTER);
    almost_raft_config_free(config);

    /* a node with a keyring refuses an unsigned message, and counts it */
    {
        const char *key = "almost-raft test key, not secret";
        CHECK_OK(almost_raft_config_new("node-1", 6, &config));
        CHECK_OK(almost_raft_config_add_peer(config, "peer", 4));
        CHECK_OK(almost_raft_config_add_key(config, (const uint8_t *)key, strlen(key)));
        CHECK_OK(almost_raft_node_new(config, callbacks(), &node));
        almost_raft_config_free(config);
        n = heartbeat(msg, "", "peer", "node-1");
        CHECK_CODE(almost_raft_node_receive(node, msg, n), ALMOST_RAFT_UNAUTHENTICATED);
        CHECK(last_error_contains("not signed"));
        CHECK_OK(almost_raft_node_status(node, &status, NULL, 0));
        CHECK(status.unauthenticated == 1);
        CHECK(strcmp(almost_raft_result_str(ALMOST_RAFT_UNAUTHENTICATED), "message not authenticated") == 0);
        {
            /* rotation on the running node: the new key second, then first */
            const char *next = "another key of thirty-two bytes!";
            const uint8_t *both[2] = {(const uint8_t *)key, (const uint8_t *)next};
            const uint8_t *short_key[1] = {(const uint8_t *)"short"};
            size_t lens[2] = {32, 32}, short_len[1] = {5};
            CHECK_OK(almost_raft_node_set_keys(node, both, lens, 2));
            CHECK_CODE(almost_raft_node_set_keys(node, short_key, short_len, 1), ALMOST_RAFT_INVALID_CONFIG);
            CHECK(last_error_contains("5 bytes"));
            CHECK_CODE(almost_raft_node_set_keys(node, NULL, lens, 1), ALMOST_RAFT_NULL_POINTER);
            CHECK_CODE(almost_raft_node_set_keys(node, both, lens, 0), ALMOST_RAFT_INVALID_CONFIG);
            CHECK(last_error_contains("at least one key"));
        }
        CHECK_OK(almost_raft_node_close(node));
        almost_raft_node_free(node);
    }

    /* a running node refuses bad input and goes on */
    node = start("node-1", 3, 3);
    CHECK_CODE(almost_raft_set_worker_threads(8), ALMOST_RAFT_RUNTIME);
    CHECK_CODE(almost_raft_node_receive(NULL, msg, 1), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_node_receive(node, NULL, 5), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_node_receive(node, msg, 0), ALMOST_RAFT_MALFORMED_MESSAGE);
    CHECK(last_error_contains("empty message"));
    memset(msg, 0xab, sizeof msg);
    CHECK_CODE(almost_raft_node_receive(node, msg, 20), ALMOST_RAFT_MALFORMED_MESSAGE);
    CHECK(last_error_contains("version"));
    CHECK_CODE(almost_raft_node_receive(node, msg, sizeof msg), ALMOST_RAFT_MALFORMED_MESSAGE);
    n = heartbeat(msg, "", "stranger", "node-1");
    CHECK_CODE(almost_raft_node_receive(node, msg, n), ALMOST_RAFT_UNKNOWN_PEER);
    CHECK(last_error_contains("stranger"));
    n = heartbeat(msg, "other", "peer", "node-1");
    CHECK_CODE(almost_raft_node_receive(node, msg, n), ALMOST_RAFT_WRONG_CLUSTER);
    n = heartbeat(msg, "", "peer", "node-9");
    CHECK_CODE(almost_raft_node_receive(node, msg, n), ALMOST_RAFT_WRONG_RECIPIENT);
    n = heartbeat(msg, "", "peer", "node-1");
    CHECK_OK(almost_raft_node_receive(node, msg, n)); /* a valid heartbeat is accepted */

    CHECK_CODE(almost_raft_node_add_peer(node, "\xff", 1), ALMOST_RAFT_INVALID_UTF8);
    CHECK_CODE(almost_raft_node_add_peer(node, "", 0), ALMOST_RAFT_INVALID_ID);
    CHECK_CODE(almost_raft_node_add_peer(node, long_id, 256), ALMOST_RAFT_INVALID_ID);
    CHECK_CODE(almost_raft_node_add_peer(node, "node-1", 6), ALMOST_RAFT_INVALID_ID);
    CHECK_OK(almost_raft_node_add_peer(node, "peer", 4)); /* idempotent */
    CHECK_OK(almost_raft_node_add_peer(node, "third", 5));
    CHECK_CODE(almost_raft_node_add_peer(node, "fourth", 6), ALMOST_RAFT_TOO_MANY_NODES);
    CHECK_OK(almost_raft_node_remove_peer(node, "nobody", 6));
    CHECK_CODE(almost_raft_node_peer_unreachable(node, "nobody", 6), ALMOST_RAFT_UNKNOWN_PEER);
    CHECK_CODE(almost_raft_node_peer_unreachable(node, NULL, 4), ALMOST_RAFT_NULL_POINTER);
    CHECK_CODE(almost_raft_node_peer_unreachable(node, "\xff", 1), ALMOST_RAFT_INVALID_UTF8);
    CHECK_CODE(almost_raft_node_peer_unreachable(NULL, "peer", 4), ALMOST_RAFT_NULL_POINTER);
    CHECK_OK(almost_raft_node_peer_unreachable(node, "third", 5)); /* not the leader: no effect */
    CHECK_CODE(almost_raft_node_transfer_leadership(node, NULL, 0), ALMOST_RAFT_NOT_LEADER);
    CHECK_CODE(almost_raft_node_status(node, NULL, NULL, 0), ALMOST_RAFT_NULL_POINTER);
    CHECK_OK(almost_raft_node_status(node, &status, buf, sizeof buf));
    CHECK(status.peer_count == 2 && status.leader_len == strlen(buf));
    /* the heartbeat from "peer" may already have made it the known leader */
    CHECK(strcmp(buf, "") == 0 || strcmp(buf, "peer") == 0);
    CHECK(status.role != ALMOST_RAFT_LEADER);

    /* calls after close */
    freed = 0;
    CHECK_OK(almost_raft_node_close(node));
    CHECK(freed == 1);
    CHECK_CODE(almost_raft_node_receive(node, msg, n), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_add_peer(node, "x", 1), ALMOST_RAFT_CLOSED);
    CHECK_CODE(almost_raft_node_status(node, &status, buf, sizeof buf), ALMOST_RAFT_CLOSED);
    CHECK_OK(almost_raft_node_close(node)); /* closing twice is harmless */
    almost_raft_node_free(node);
    almost_raft_node_free(NULL);
    CHECK(freed == 1);

    /* a one-node cluster elects itself; a small leader buffer is refused */
    node = start("solo", 1, 0);
    CHECK_OK(almost_raft_node_remove_peer(node, "peer", 4));
    {
        struct timespec pause = {0, 10 * 1000 * 1000};
        struct timespec guard = deadline_in(60), now;
        do { /* polls status; the cluster test waits on callbacks instead */
            CHECK_OK(almost_raft_node_status(node, &status, buf, sizeof buf));
            clock_gettime(CLOCK_REALTIME, &now);
            CHECK(now.tv_sec < guard.tv_sec);
            nanosleep(&pause, NULL);
        } while (!status.has_leader);
    }
    CHECK(strcmp(buf, "solo") == 0 && status.role == ALMOST_RAFT_LEADER);
    CHECK_CODE(almost_raft_node_status(node, &status, buf, 4), ALMOST_RAFT_BUFFER_TOO_SMALL);
    CHECK_CODE(almost_raft_node_transfer_leadership(node, NULL, 0), ALMOST_RAFT_NO_PEERS);
    CHECK_CODE(almost_raft_node_transfer_leadership(node, "ghost", 5), ALMOST_RAFT_UNKNOWN_PEER);
    CHECK_OK(almost_raft_node_remove_peer(node, "solo", 4)); /* removing itself stops it */
    CHECK_CODE(almost_raft_node_add_peer(node, "x", 1), ALMOST_RAFT_CLOSED);
    almost_raft_node_free(node);

    printf("test_bad_input: ok\n");
    return 0;
}
