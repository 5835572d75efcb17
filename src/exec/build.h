/*
 * Builds: from a function's code to the files its instances load.
 *
 * A build takes one uploaded code blob (a single file, or a .tar.gz/.tgz
 * or .zip archive, told apart by the function's code filename), unpacks
 * it in a sandbox and runs the environment's builder there (the c
 * runtime's compiler script, or a user command). The result is cached on
 * disk under a key that covers everything the output depends on:
 *
 *   DIR/<key>/status     "ok\n" or "failed\n", written last (atomically)
 *   DIR/<key>/build.log  the builder's stdout and stderr, bounded
 *   DIR/<key>/out/deploy the artifact: a file tree the instances get at /code
 *
 * key = sha256(code sha256, filename, runtime, builder). A build with the
 * same key is never run twice: concurrent requests share one run, later
 * ones read the status. A half-written build (flintd killed mid-way) has
 * no status file and is started again from scratch.
 *
 * Inside the sandbox the code blob is FLINT_CODE and the writable build
 * directory FLINT_OUT (the deployment is copied there once the builder is
 * done and nothing of the build runs any more: the unpacking and building
 * happen in the sandbox's /tmp, FL_BUILD_TMP_MAX bytes at most); the
 * builder sees Fission's SRC_PKG (the unpacked
 * source: a directory, or the single file) and DEPLOY_PKG (for c, the
 * shared object to write; otherwise a directory that starts as a copy of
 * the source and is the deployment once the builder exits 0).
 *
 * Used from the loop's thread only.
 */
#ifndef FLINT_EXEC_BUILD_H
#define FLINT_EXEC_BUILD_H

#include <stdbool.h>
#include <uv.h>

#include "exec/sandbox.h"
#include "exec/spec.h"

#define FL_BUILD_LOG_MAX (64u << 10)
/* The build's private /tmp, where the code is unpacked and built: an
 * archive or a builder that needs more fails there, on no host disk. */
#define FL_BUILD_TMP_MAX (1ULL << 30)

struct fl_builder;

struct fl_build_input {
    const char *code_path;     /* the blob on disk */
    const char *code_sha256;   /* its hash (part of the key) */
    const char *code_filename; /* decides single file vs archive; NULL: "code" */
    enum fl_runtime runtime;
    const char *builder;     /* the environment's build command; NULL: the runtime's */
    const char *runtime_dir; /* the runtime's files (its build script) */
    struct fl_limits limits; /* for the build sandbox; 0 fields: generous defaults */
    bool network;            /* whether the builder may reach the network */
};

struct fl_build_result {
    bool ok;
    const char *key;        /* 64 hex digits */
    const char *deploy_dir; /* the artifact's directory (valid while the builder lives) */
    const char *log;        /* the build log (NUL-terminated, may be empty) */
    bool cached;            /* found on disk, nothing ran */
};

/* err is 0 (see res->ok for the build's own outcome) or an error of
 * flintd's: the sandbox could not start, the disk failed, FL_ECANCELED on
 * close. */
typedef void (*fl_build_cb)(int err, const struct fl_build_result *res, void *data);

/* A builder keeping its cache in dir (created 0700). 0 or a negative error. */
int fl_builder_new(uv_loop_t *loop, const char *dir, const struct fl_sandbox_mode *mode,
                   struct fl_builder **out);

/* Stop running builds (their callbacks get FL_ECANCELED) and free the
 * builder once they are gone; done may be NULL. */
void fl_builder_close(struct fl_builder *b, void (*done)(void *data), void *data);

/* Build in (copied). cb runs exactly once, never from inside this call.
 * 0, or FL_EINVAL / FL_ENOMEM without a callback. */
int fl_builder_build(struct fl_builder *b, const struct fl_build_input *in, fl_build_cb cb,
                     void *data);

/* The file name of the artifact inside the deploy directory that an
 * instance is specialized with ("fn.so" for c, the code filename for a
 * single file, "" for an archive's whole tree), written to out. */
void fl_build_entry(const struct fl_build_input *in, char *out, size_t size);

#endif
