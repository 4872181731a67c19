// A one-node cluster in C++ through the installed CMake package: the node elects itself,
// the leader callback says so, and the library's version is the header's.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "almost_raft.h"

namespace {

struct Leadership {
    std::mutex lock;
    std::condition_variable changed;
    std::string leader;
    uint64_t term = 0;
};

void on_leader(void *userdata, bool has_leader, const char *leader, size_t leader_len,
               uint64_t term) {
    auto *l = static_cast<Leadership *>(userdata);
    std::lock_guard<std::mutex> guard(l->lock);
    l->leader = has_leader ? std::string(leader, leader_len) : std::string();
    l->term = term;
    l->changed.notify_all();
}

void send_nowhere(void *, const char *, size_t, const uint8_t *, size_t) {}

int fail(const char *what, almost_raft_result code) {
    char message[256] = {0};
    almost_raft_last_error_message(message, sizeof message);
    std::fprintf(stderr, "%s: %s (%s)\n", what, almost_raft_result_str(code), message);
    return 1;
}

}  // namespace

int main() {
    if (std::strcmp(almost_raft_version(), ALMOST_RAFT_VERSION) != 0) {
        std::fprintf(stderr, "library %s, header %s\n", almost_raft_version(), ALMOST_RAFT_VERSION);
        return 1;
    }
    almost_raft_config *config = nullptr;
    almost_raft_result r = almost_raft_config_new("solo", 4, &config);
    if (r != ALMOST_RAFT_OK) return fail("config_new", r);
    almost_raft_config_set_min_nodes(config, 1);
    almost_raft_config_set_election_timeout_ms(config, 150);
    almost_raft_config_set_heartbeat_interval_ms(config, 50);

    Leadership leadership;
    almost_raft_callbacks callbacks = {};
    callbacks.userdata = &leadership;
    callbacks.send = send_nowhere;
    callbacks.leader_changed = on_leader;
    almost_raft_node *node = nullptr;
    r = almost_raft_node_new(config, callbacks, &node);
    almost_raft_config_free(config);
    if (r != ALMOST_RAFT_OK) return fail("node_new", r);

    bool elected;
    {
        std::unique_lock<std::mutex> guard(leadership.lock);
        // Waits for the event; the bound only keeps a broken build from hanging the test.
        elected = leadership.changed.wait_for(guard, std::chrono::seconds(30),
                                              [&] { return leadership.leader == "solo"; });
    }
    almost_raft_node_free(node);
    if (!elected) {
        std::fprintf(stderr, "no leader\n");
        return 1;
    }
    std::printf("consumer: solo leads term %llu (almost-raft %s)\n",
                static_cast<unsigned long long>(leadership.term), almost_raft_version());
    return 0;
}
