/* almost_raft_set_worker_threads: 0 is refused; once a node has started it returns
 * ALMOST_RAFT_RUNTIME; and a call racing the first node's start either takes effect (the
 * runtime has that many threads) or returns ALMOST_RAFT_RUNTIME: never OK and ignored.
 * The runtime starts once per process, so each race runs in a child process of its own,
 * with the setter delayed a little more each round to sweep the start. */
#include "harness.h" /* first: it sets _POSIX_C_SOURCE */

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 40
#define SPIN_STEP 10000L
#define SET_FIRST 10 /* a child's exit code when the setter won the race */

static pthread_barrier_t go;
static long spin;
static almost_raft_result set_rc;


/* The threads of the library's runtime: every thread of this process but the main thread
 * and the setter (both still alive while this counts). By count, not by name: a new thread
 * names itself only once it runs. */
static int runtime_threads(void) {
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    int count = 0;
    CHECK(dir != NULL);
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] != '.') count++;
    }
    closedir(dir);
    return count - 2;
}

static void *setter(void *arg) {
    volatile long i;
    (void)arg;
    pthread_barrier_wait(&go);
    for (i = 0; i < spin; i++) {
    }
    set_rc = almost_raft_set_worker_threads(3);
    pthread_barrier_wait(&go); /* set */
    pthread_barrier_wait(&go); /* counted */
    return NULL;
}

/* In a child: the setter races this thread's first node start. */
static int race(void) {
    almost_raft_config *config = NULL;
    almost_raft_node *node = NULL;
    almost_raft_callbacks cb;
    memset(&cb, 0, sizeof cb);
    pthread_t thread;
    int threads;
    CHECK_OK(almost_raft_config_new("me", 2, &config));
    CHECK_OK(almost_raft_config_add_peer(config, "peer", 4));
    cb.userdata = NULL;
    cb.send = ignore_send;
    cb.leader_changed = NULL;
    cb.free_userdata = NULL;
    CHECK(pthread_barrier_init(&go, NULL, 2) == 0);
    CHECK(pthread_create(&thread, NULL, setter, NULL) == 0);
    pthread_barrier_wait(&go);
    CHECK_OK(almost_raft_node_new(config, cb, &node));
    pthread_barrier_wait(&go); /* set */
    threads = runtime_threads();
    if (threads != (set_rc == ALMOST_RAFT_OK ? 3 : 2)) {
        fprintf(stderr, "set_worker_threads(3) returned %s, yet the runtime has %d threads\n",
                almost_raft_result_str(set_rc), threads);
        exit(1);
    }
    CHECK(set_rc == ALMOST_RAFT_OK || set_rc == ALMOST_RAFT_RUNTIME);
    CHECK_CODE(almost_raft_set_worker_threads(4), ALMOST_RAFT_RUNTIME);
    CHECK(runtime_threads() == threads);
    pthread_barrier_wait(&go); /* counted */
    CHECK(pthread_join(thread, NULL) == 0);
    almost_raft_node_free(node);
    almost_raft_config_free(config);
    pthread_barrier_destroy(&go);
    return set_rc == ALMOST_RAFT_OK ? SET_FIRST : 0;
}

int main(void) {
    int round, set_first = 0;
    CHECK_CODE(almost_raft_set_worker_threads(0), ALMOST_RAFT_INVALID_CONFIG);
    for (round = 0; round < ROUNDS; round++) {
        int status;
        pid_t pid;
        fflush(stdout);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            spin = round * SPIN_STEP;
            exit(race());
        }
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != SET_FIRST)) {
            fprintf(stderr, "round %d (spin %ld) failed\n", round, round * SPIN_STEP);
            return 1;
        }
        set_first += WEXITSTATUS(status) == SET_FIRST;
    }
    printf("test_worker_threads: ok (%d races: the setting came first in %d)\n", ROUNDS, set_first);
    return 0;
}
