/*
 * An intrusive queue: a circular doubly linked list after libuv's
 * uv__queue. A struct that lives in a queue embeds a struct fl_queue node;
 * the queue itself is a struct fl_queue head that is never an element. An
 * empty head, and a node in no queue, point to themselves.
 *
 *     struct job { int id; struct fl_queue node; };
 *     struct fl_queue jobs;
 *     fl_queue_init(&jobs);
 *     fl_queue_insert_tail(&jobs, &job->node);
 *
 *     struct fl_queue *q, *tmp;
 *     FL_QUEUE_FOREACH(q, tmp, &jobs) {
 *         struct job *j = FL_QUEUE_DATA(q, struct job, node);
 *         if (j->id == 7) {
 *             fl_queue_remove(q);   (removing the current node is safe)
 *             free(j);
 *         }
 *     }
 *
 * Every operation is O(1) and none allocates: the queue owns nothing, and
 * an element's memory is its owner's. A node may be in one queue at a
 * time; the same node may move between queues (remove, then insert).
 * Header-only: everything is static inline, so hot paths pay no call.
 */
#ifndef FLINT_BASE_QUEUE_H
#define FLINT_BASE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

struct fl_queue {
    struct fl_queue *next;
    struct fl_queue *prev;
};

/* The struct of the given type whose member field is the node q. */
#define FL_QUEUE_DATA(q, type, field) ((type *)(void *)((char *)(q)-offsetof(type, field)))

/* Walk head's elements from first to last: q is each node in turn, tmp the
 * one after it (read before the body runs). The body may remove (and free)
 * q, but no other element of the queue; to remove others, restart the walk
 * or loop on fl_queue_first(). */
#define FL_QUEUE_FOREACH(q, tmp, head)                                                             \
    for ((q) = (head)->next, (tmp) = (q)->next; (q) != (head); (q) = (tmp), (tmp) = (q)->next)

/* An empty queue head, or a node in no queue. */
static inline void fl_queue_init(struct fl_queue *q)
{
    q->next = q;
    q->prev = q;
}

static inline bool fl_queue_empty(const struct fl_queue *head)
{
    return head->next == head;
}

/* The first (oldest, for a queue filled at the tail) node, or NULL if the
 * queue is empty. */
static inline struct fl_queue *fl_queue_first(const struct fl_queue *head)
{
    return head->next == head ? NULL : head->next;
}

/* The last node, or NULL if the queue is empty. */
static inline struct fl_queue *fl_queue_last(const struct fl_queue *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* The node after q in head's queue, or NULL if q is the last. */
static inline struct fl_queue *fl_queue_next(const struct fl_queue *head, const struct fl_queue *q)
{
    return q->next == head ? NULL : q->next;
}

/* True if the node is in a queue. A node that was never initialized but
 * zeroed (calloc) counts as in none. */
static inline bool fl_queue_linked(const struct fl_queue *q)
{
    return q->next != NULL && q->next != q;
}

static inline void fl_queue_insert_head(struct fl_queue *head, struct fl_queue *q)
{
    q->next = head->next;
    q->prev = head;
    q->next->prev = q;
    head->next = q;
}

static inline void fl_queue_insert_tail(struct fl_queue *head, struct fl_queue *q)
{
    q->next = head;
    q->prev = head->prev;
    q->prev->next = q;
    head->prev = q;
}

/* Take q out of its queue; it is then in none. Removing a node that is in
 * no queue (removed before, initialized, or zeroed) does nothing. */
static inline void fl_queue_remove(struct fl_queue *q)
{
    if (q->next == NULL)
        return;
    q->prev->next = q->next;
    q->next->prev = q->prev;
    fl_queue_init(q);
}

/* Append every element of from to the tail of to, in order; from is left
 * empty. */
static inline void fl_queue_append(struct fl_queue *to, struct fl_queue *from)
{
    if (fl_queue_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    fl_queue_init(from);
}

#endif
