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
 * The builder is untrusted, so once it exits 0 its output is made inert
 * and bounded (fl_normalize_tree(), see base/fs.h): everything is owned
 * by root:root, directories are 0755, files 0644 or 0755 (no setuid,
 * setgid, sticky or group/other write), symbolic links stay links (never
 * followed), fifos, sockets and devices are removed; output past the
 * configured number of files or bytes, nested too deep, or whose deploy
 * directory is a link, fails the build with a line in its log saying so.
 *
 * The file-tree work (removing what an unfinished run left, normalizing,
 * writing the log and status with fsync) runs on libuv's thread pool;
 * the API is used from the loop's thread only.
 */
#ifndef FLINT_EXEC_BUILD_H
#define FLINT_EXEC_BUILD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "base/sha256.h"

#include "exec/sandbox.h"
#include "exec/spec.h"

#define FL_BUILD_LOG_MAX   (64u << 10)
#define FL_BUILD_MAX_FILES 200000u      /* default bound on a build's output entries */
#define FL_BUILD_MAX_BYTES (1ull << 30) /* default bound on its files' bytes */
/* The build's private /tmp, where the code is unpacked and built: an
 * archive or a builder that needs more fails there, on no host disk. */
#define FL_BUILD_TMP_MAX (1ULL << 30)

struct fl_builder;

struct fl_builder_config {
    const char *dir;                    /* the cache (created 0700) */
    const struct fl_sandbox_mode *mode; /* copied */
    uint64_t max_output_files;          /* files, directories and links in deploy/ */
    uint64_t max_output_bytes;          /* sizes of deploy/'s files added up */
};

/* Defaults: FL_BUILD_MAX_FILES and FL_BUILD_MAX_BYTES (dir and mode to be
 * set). */
void fl_builder_config_init(struct fl_builder_config *cfg);

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

/* A builder keeping its cache in cfg->dir; 0 fields of cfg take their
 * defaults. 0 or a negative error (-ENAMETOOLONG: cfg->dir is too long for
 * the paths made under it). */
int fl_builder_new(uv_loop_t *loop, const struct fl_builder_config *cfg, struct fl_builder **out);

/* Stop running builds (their callbacks get FL_ECANCELED) and free the
 * builder once they are gone; done may be NULL. */
void fl_builder_close(struct fl_builder *b, void (*done)(void *data), void *data);

/* Build in (copied). cb runs exactly once, never from inside this call.
 * 0, or FL_EINVAL / FL_ENOMEM without a callback (a sandbox that cannot
 * start or a disk error comes later, as the callback's err). */
int fl_builder_build(struct fl_builder *b, const struct fl_build_input *in, fl_build_cb cb,
                     void *data);

/* The file name of the artifact inside the deploy directory that an
 * instance is specialized with ("fn.so" for c, the code filename for a
 * single file, "" for an archive's whole tree), written to out. */
void fl_build_entry(const struct fl_build_input *in, char *out, size_t size);

/* The key in names its build by: DIR/<key> (64 hex digits and a NUL). */
void fl_build_key(const struct fl_build_input *in, char key[FL_SHA256_HEX]);

/* Whether a build of key is under way or being answered from the cache
 * (its directory must then stay). */
bool fl_builder_busy(const struct fl_builder *b, const char *key);

#endif
