/* Unit tests for src/base/queue.h, the intrusive queue. */
#include "runner.h"

#include "base/queue.h"

struct item {
    int id;
    struct fl_queue node;
};

/* The ids of head's elements, first to last, into out ("" when empty);
 * also checks that the links agree walking backwards. */
static const char *ids(struct fl_queue *head, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    struct fl_queue *q, *tmp;
    FL_QUEUE_FOREACH(q, tmp, head)
    {
        if (n + 2 < size) {
            out[n++] = (char)('0' + FL_QUEUE_DATA(q, struct item, node)->id);
            out[n] = '\0';
        }
    }
    size_t back = 0;
    for (q = head->prev; q != head; q = q->prev) {
        ASSERT(back < n);
        ASSERT_EQ(FL_QUEUE_DATA(q, struct item, node)->id, out[n - 1 - back] - '0');
        ASSERT(q->next->prev == q);
        back++;
    }
    ASSERT_EQ(back, n);
    return out;
}

TEST(queue_starts_empty)
{
    struct fl_queue head;
    fl_queue_init(&head);
    ASSERT(fl_queue_empty(&head));
    ASSERT(fl_queue_first(&head) == NULL);
    ASSERT(fl_queue_last(&head) == NULL);
    ASSERT(!fl_queue_linked(&head));
    char s[16];
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "");
}

TEST(queue_inserts_at_both_ends_in_order)
{
    struct fl_queue head;
    fl_queue_init(&head);
    struct item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        fl_queue_init(&it[i].node);
    }
    fl_queue_insert_tail(&head, &it[2].node);
    fl_queue_insert_tail(&head, &it[3].node);
    fl_queue_insert_head(&head, &it[1].node);
    fl_queue_insert_tail(&head, &it[4].node);
    fl_queue_insert_head(&head, &it[0].node);
    char s[16];
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "01234");
    ASSERT(!fl_queue_empty(&head));
    ASSERT(fl_queue_first(&head) == &it[0].node);
    ASSERT(fl_queue_last(&head) == &it[4].node);
    ASSERT(fl_queue_next(&head, &it[3].node) == &it[4].node);
    ASSERT(fl_queue_next(&head, &it[4].node) == NULL);
    ASSERT(FL_QUEUE_DATA(fl_queue_first(&head), struct item, node) == &it[0]);
    for (int i = 0; i < 5; i++)
        ASSERT(fl_queue_linked(&it[i].node));
}

TEST(queue_removes_from_anywhere)
{
    struct fl_queue head;
    fl_queue_init(&head);
    struct item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        fl_queue_insert_tail(&head, &it[i].node);
    }
    char s[16];
    fl_queue_remove(&it[2].node); /* middle */
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "0134");
    ASSERT(!fl_queue_linked(&it[2].node));
    fl_queue_remove(&it[0].node); /* first */
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "134");
    fl_queue_remove(&it[4].node); /* last */
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "13");
    /* removed again: nothing happens, the queue is untouched */
    fl_queue_remove(&it[4].node);
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "13");
    /* a node can move to another queue, and back */
    struct fl_queue other;
    fl_queue_init(&other);
    fl_queue_remove(&it[3].node);
    fl_queue_insert_tail(&other, &it[3].node);
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "1");
    ASSERT_STR_EQ(ids(&other, s, sizeof(s)), "3");
    fl_queue_remove(&it[1].node);
    fl_queue_remove(&it[3].node);
    ASSERT(fl_queue_empty(&head));
    ASSERT(fl_queue_empty(&other));
}

TEST(queue_remove_of_a_zeroed_node_does_nothing)
{
    struct item it = {0};
    ASSERT(!fl_queue_linked(&it.node));
    fl_queue_remove(&it.node);
    ASSERT(!fl_queue_linked(&it.node));
    struct fl_queue head;
    fl_queue_init(&head);
    fl_queue_insert_tail(&head, &it.node);
    ASSERT(fl_queue_linked(&it.node));
    fl_queue_remove(&it.node);
    ASSERT(fl_queue_empty(&head));
}

TEST(queue_foreach_tolerates_removing_the_current_node)
{
    struct fl_queue head;
    fl_queue_init(&head);
    struct item it[8];
    for (int i = 0; i < 8; i++) {
        it[i].id = i;
        fl_queue_insert_tail(&head, &it[i].node);
    }
    /* remove every even one while walking, and scribble over it as a free
     * would: the walk must not read a removed node again */
    struct fl_queue *q, *tmp;
    int seen = 0;
    FL_QUEUE_FOREACH(q, tmp, &head)
    {
        struct item *x = FL_QUEUE_DATA(q, struct item, node);
        seen++;
        if (x->id % 2 == 0) {
            fl_queue_remove(q);
            x->node.next = x->node.prev = NULL;
        }
    }
    ASSERT_EQ(seen, 8);
    char s[16];
    ASSERT_STR_EQ(ids(&head, s, sizeof(s)), "1357");
    /* and removing all of them empties it */
    FL_QUEUE_FOREACH(q, tmp, &head)
    fl_queue_remove(q);
    ASSERT(fl_queue_empty(&head));
}

TEST(queue_append_moves_a_whole_queue)
{
    struct fl_queue a, b;
    fl_queue_init(&a);
    fl_queue_init(&b);
    struct item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].id = i;
        fl_queue_insert_tail(i < 2 ? &a : &b, &it[i].node);
    }
    char s[16];
    fl_queue_append(&a, &b);
    ASSERT_STR_EQ(ids(&a, s, sizeof(s)), "01234");
    ASSERT(fl_queue_empty(&b));
    fl_queue_append(&a, &b); /* an empty one: nothing changes */
    ASSERT_STR_EQ(ids(&a, s, sizeof(s)), "01234");
    fl_queue_append(&b, &a); /* into an empty one */
    ASSERT_STR_EQ(ids(&b, s, sizeof(s)), "01234");
    ASSERT(fl_queue_empty(&a));
}

/* A queue used as a FIFO many times over stays consistent (the executor's
 * and the HTTP server's request queues are used this way). */
TEST(queue_fifo_round_trips)
{
    struct fl_queue head;
    fl_queue_init(&head);
    struct item it[4] = {{0}};
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 1000; round++) {
        while (next_in - next_out < 4) {
            struct item *x = &it[next_in % 4];
            x->id = next_in % 10;
            fl_queue_insert_tail(&head, &x->node);
            next_in++;
        }
        int take = 1 + round % 4;
        for (int k = 0; k < take; k++) {
            struct fl_queue *q = fl_queue_first(&head);
            ASSERT(q != NULL);
            ASSERT_EQ(FL_QUEUE_DATA(q, struct item, node)->id, next_out % 10);
            fl_queue_remove(q);
            next_out++;
        }
    }
    while (fl_queue_first(&head) != NULL)
        fl_queue_remove(fl_queue_first(&head));
    ASSERT(fl_queue_empty(&head));
}
