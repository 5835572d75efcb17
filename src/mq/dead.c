/*
 * Dead letters that a connector holds apart from the store (a NATS
 * trigger's, in stream FLINT_DEAD): redrive and purge (mq.h,
 * fl_mq_dead_steer). The history is the async module's kind
 * (async/history.h), written here as delivery.c writes it:
 *
 *   redrive  read the history (dead, not purged, an MQ trigger's) ->
 *            append "redriven" {"attempts"}, fenced on the history's last
 *            event -> the connector publishes the letter again to the
 *            trigger's topic with Flint-Redrive: <invocation id> (the
 *            delivery takes that id, so the attempts go on in the same
 *            history) and removes it; if that fails, "undriven" {"error"}
 *   purge    read the history -> the connector removes the letter ->
 *            append "purged" {}
 *
 * Anything else (no such invocation, not dead, a letter of the store's,
 * one the connector does not hold) is FL_ENOENT: the async module's.
 */
#include "mq/internal.h"
#include "mq/nats.h"

#include "async/history.h"
#include "base/error.h"
#include "base/log.h"
#include "base/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct steer {
    struct fl_mq *mq;
    bool redrive;
    fl_store_cb read_cb; /* fl_mq_dead_read(): the letter to it (NULL: a steer) */
    char id[FL_UUID_STRLEN + 1];
    struct fl_inv inv;
    uint64_t last_seq;
    const struct fl_mq_connector *conn;
    void *self;
    fl_mq_json_cb cb;
    void *data;
};

static void answer(struct steer *s, int err)
{
    if (s->read_cb != NULL) {
        s->read_cb(err, NULL, s->data);
        fl_inv_release(&s->inv);
        free(s);
        return;
    }
    json_t *v = NULL;
    if (err == 0)
        v = json_pack("{s:[s]}", s->redrive ? "redriven" : "purged", s->id);
    s->cb(err == 0 && v == NULL ? FL_ENOMEM : err, v, s->data);
    json_decref(v);
    fl_inv_release(&s->inv);
    free(s);
}

static int append(struct steer *s, const char *type, json_t *event, uint64_t expect, fl_store_cb cb)
{
    char stream[8 + FL_UUID_STRLEN];
    snprintf(stream, sizeof(stream), "inv/%s", s->id);
    char *text = event != NULL ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    if (text == NULL)
        return FL_ENOMEM;
    struct fl_event_in ev = {type, text, strlen(text)};
    int rc = fl_store_append(s->mq->store, stream, &ev, 1, expect, cb, cb ? s : NULL);
    free(text);
    return rc;
}

static void on_recorded(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_mq *mq = s->mq;
    answer(s, err);
    mq_op_done(mq);
}

/* The connector steered the letter (or could not). */
static void on_steered(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_mq *mq = s->mq;
    if (s->redrive && err < 0) {
        /* recorded as redriven, but still where it was: say so */
        append(s, "undriven", json_pack("{s:s}", "error", fl_errname(err)), FL_SEQ_ANY, NULL);
        fl_log(FL_LOG_WARN, "mq", "could not redrive a dead letter", "invocation=%s error=%s",
               s->id, fl_errname(err));
        answer(s, err == FL_ENOENT ? FL_ECONFLICT : err);
    } else if (s->redrive) {
        answer(s, 0);
    } else if (err < 0) {
        answer(s, err); /* FL_ENOENT: not the connector's; the async module's then */
    } else {
        int rc = append(s, "purged", json_object(), FL_SEQ_ANY, on_recorded);
        if (rc == 0)
            mq_op(mq);
        else
            answer(s, rc);
    }
    mq_op_done(mq);
}

/* The letter, read: to the reader. */
static void on_read(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_mq *mq = s->mq;
    s->read_cb(err == 0 && res->n != 1 ? FL_ENOENT : err, res, s->data);
    fl_inv_release(&s->inv);
    free(s);
    mq_op_done(mq);
}

static int steer_in_connector(struct steer *s)
{
    if (s->read_cb != NULL) {
        int rc = s->conn->read_dead(s->self, s->inv.topic, s->inv.consumer, s->inv.seq, on_read, s);
        if (rc == 0)
            mq_op(s->mq);
        return rc;
    }
    char headers[64 + FL_UUID_STRLEN];
    snprintf(headers, sizeof(headers), "{\"Flint-Redrive\":\"%s\"}", s->id);
    int rc = s->conn->steer_dead(s->self, s->inv.topic, s->inv.consumer, s->inv.seq,
                                 s->redrive ? headers : NULL, on_steered, s);
    if (rc == 0)
        mq_op(s->mq);
    return rc;
}

static void on_redriven(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_mq *mq = s->mq;
    if (err == 0)
        err = steer_in_connector(s);
    if (err < 0)
        answer(s, err == FL_ECONFLICT ? FL_ECONFLICT : err);
    mq_op_done(mq);
}

/* The trigger whose consumer is named consumer ("mqt/<name>"), or NULL. */
static struct trigger *trigger_of(struct fl_mq *mq, const char *consumer)
{
    if (strncmp(consumer, "mqt/", 4) != 0)
        return NULL;
    struct fl_queue *e, *tmp;
    FL_QUEUE_FOREACH(e, tmp, &mq->triggers)
    {
        struct trigger *t = FL_QUEUE_DATA(e, struct trigger, link);
        if (!t->removed && strcmp(t->consumer, consumer) == 0)
            return t;
    }
    return NULL;
}

static int steer_read(struct steer *s, const struct fl_store_result *res)
{
    int rc = fl_inv_fold(s->id, res->records, res->n, &s->inv);
    if (rc < 0 && rc != FL_ECORRUPT)
        return rc;
    if (s->inv.status != FL_INV_DEAD || s->inv.purged || s->inv.seq == 0 ||
        strncmp(s->inv.consumer, "mqt/", 4) != 0)
        return FL_ENOENT; /* not a trigger's dead letter: the async module says what */
    s->last_seq = res->n > 0 ? res->records[res->n - 1].seq : 0;
    struct trigger *t = trigger_of(s->mq, s->inv.consumer);
    if (s->redrive) {
        /* delivered again by its trigger, still on that topic, only */
        if (t == NULL || t->conn->steer_dead == NULL || strcmp(t->topic, s->inv.topic) != 0)
            return FL_ENOENT;
        s->conn = t->conn;
        s->self = t->self;
        t->had_dead = true; /* its deliveries read their histories */
        json_t *d = json_pack("{s:i}", "attempts", (int)s->inv.attempts);
        rc = append(s, "redriven", d, s->last_seq, on_redriven);
        if (rc == 0)
            mq_op(s->mq);
        return rc;
    }
    /* a purge or a read: wherever the connector holds it, its trigger gone or not */
    if (t != NULL && t->conn->steer_dead == NULL && strcmp(t->topic, s->inv.topic) == 0)
        return FL_ENOENT; /* a builtin trigger's, in the store */
    if (t != NULL && t->conn->steer_dead != NULL) {
        s->conn = t->conn;
        s->self = t->self;
    } else if (s->mq->nats != NULL) {
        s->conn = &fl_mq_nats_connector;
        s->self = s->mq->nats;
    } else {
        return FL_ENOENT;
    }
    return steer_in_connector(s);
}

static void on_history(int err, const struct fl_store_result *res, void *data)
{
    struct steer *s = data;
    struct fl_mq *mq = s->mq;
    if (err == 0)
        err = steer_read(s, res);
    if (err < 0)
        answer(s, err);
    mq_op_done(mq);
}

static int start(struct fl_mq *mq, const char *id, bool redrive, fl_store_cb read_cb,
                 fl_mq_json_cb cb, void *data)
{
    if (!fl_mq_holds_dead(mq) || mq->closing || strlen(id) != FL_UUID_STRLEN)
        return FL_ENOENT;
    struct steer *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return FL_ENOMEM;
    *s = (struct steer){.mq = mq, .redrive = redrive, .read_cb = read_cb, .cb = cb, .data = data};
    fl_strlcpy(s->id, id, sizeof(s->id));
    char stream[8 + FL_UUID_STRLEN];
    snprintf(stream, sizeof(stream), "inv/%s", id);
    int rc = fl_store_read(mq->store, stream, 1, 0, on_history, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    mq_op(mq);
    return 0;
}

int fl_mq_dead_steer(struct fl_mq *mq, const char *id, bool redrive, fl_mq_json_cb cb, void *data)
{
    return start(mq, id, redrive, NULL, cb, data);
}

int fl_mq_dead_read(struct fl_mq *mq, const char *id, fl_store_cb cb, void *data)
{
    return start(mq, id, false, cb, NULL, data);
}

bool fl_mq_has_connector(const struct fl_mq *mq, const char *name)
{
    if (strcmp(name, "builtin") == 0)
        return true;
    return strcmp(name, "nats") == 0 && mq != NULL && mq->nats != NULL;
}

bool fl_mq_holds_dead(const struct fl_mq *mq)
{
    return mq != NULL && mq->nats != NULL;
}
