/*
 * store_crasher DIR ROUND: append and publish into the store in DIR as
 * fast as it can, until killed. A line goes to stdout only once its
 * operation's callback reported it durable:
 *
 *   A <stream>      an append of 3 events to a new stream
 *   P <message id>  a publish to topic "crash"
 *
 * Used by test_store_sqlite's crash test, which SIGKILLs it at random.
 */
#include "base/error.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fl_store *store;
static int round_no;
static int next_op;
static int in_flight;

struct op {
    char name[64];
    bool append;
};

static void start_one(void);

static void done(int err, const struct fl_store_result *res, void *data)
{
    struct op *op = data;
    in_flight--;
    if (err == 0 && !(op->append == false && res->duplicate)) {
        char line[80];
        int n = snprintf(line, sizeof(line), "%c %s\n", op->append ? 'A' : 'P', op->name);
        if (write(STDOUT_FILENO, line, (size_t)n) != n)
            exit(1);
    } else if (err != 0) {
        fprintf(stderr, "store_crasher: %s\n", fl_strerror(err));
        exit(1);
    }
    free(op);
    start_one();
}

static void start_one(void)
{
    if (next_op >= (1 << 14))
        return;
    struct op *op = calloc(1, sizeof(*op));
    int k = next_op++;
    op->append = k % 2 == 0;
    int rc;
    if (op->append) {
        snprintf(op->name, sizeof(op->name), "r%d/s%d", round_no, k);
        struct fl_event_in ev[3] = {
            {"first", "{\"n\":1}", 7}, {"second", "{\"n\":2}", 7}, {"third", "{\"n\":3}", 7}};
        rc = fl_store_append(store, op->name, ev, 3, 0, done, op);
    } else {
        snprintf(op->name, sizeof(op->name), "r%d-%d", round_no, k);
        rc = fl_store_publish(store, "crash", NULL, op->name, op->name, strlen(op->name), done, op);
    }
    if (rc != 0) {
        fprintf(stderr, "store_crasher: %s\n", fl_strerror(rc));
        exit(1);
    }
    in_flight++;
}

static void topic_ready(int err, const struct fl_store_result *res, void *data)
{
    if (err != 0) {
        fprintf(stderr, "store_crasher: topic: %s\n", fl_strerror(err));
        exit(1);
    }
    for (int i = 0; i < 64; i++)
        start_one();
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc != 3)
        return 2;
    round_no = (int)strtol(argv[2], NULL, 10);
    uv_loop_t *loop = uv_default_loop();
    char uri[4200];
    snprintf(uri, sizeof(uri), "sqlite:%s", argv[1]);
    if (fl_store_open(loop, uri, NULL, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "store_crasher: %s\n", err);
        return 1;
    }
    struct fl_topic_limits limits = {0};
    fl_store_topic_create(store, "crash", &limits, topic_ready, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
