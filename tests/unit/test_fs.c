/*
 * Unit tests for src/base/fs.h's tree walkers, attacked the way a build or
 * an instance could: symbolic links as roots and inside trees, directories
 * swapped for links while a walk runs, special files, set-id bits, hard
 * links to files outside, and trees past the bounds.
 */
#include "runner.h"

#include "base/error.h"
#include "base/fs.h"
#include "base/str.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

static void path_in(char *out, size_t size, const char *rel)
{
    ASSERT_OK(fl_path_join(out, size, fl_test_tmpdir(), rel));
}

static void make_dir(const char *rel)
{
    char p[PATH_MAX];
    path_in(p, sizeof(p), rel);
    ASSERT_OK(mkdir(p, 0755));
}

static void make_file(const char *rel, const char *text, mode_t mode)
{
    char p[PATH_MAX];
    path_in(p, sizeof(p), rel);
    ASSERT_OK(fl_file_write_atomic(p, text, strlen(text)));
    ASSERT_OK(chmod(p, mode));
}

static void make_link(const char *target, const char *rel)
{
    char p[PATH_MAX];
    path_in(p, sizeof(p), rel);
    ASSERT_OK(symlink(target, p));
}

static bool exists(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    path_in(p, sizeof(p), rel);
    return lstat(p, &st) == 0;
}

static mode_t lmode(const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    path_in(p, sizeof(p), rel);
    ASSERT_OK(lstat(p, &st));
    return st.st_mode;
}

/* ---- inodes that must never show up in a copy ---- */

#define FORBIDDEN_MAX 4096
static dev_t forbidden_dev[FORBIDDEN_MAX];
static ino_t forbidden_ino[FORBIDDEN_MAX];
static size_t nforbidden;
static size_t found_forbidden;

static int note_forbidden(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (flag == FTW_F && S_ISREG(st->st_mode) && nforbidden < FORBIDDEN_MAX) {
        forbidden_dev[nforbidden] = st->st_dev;
        forbidden_ino[nforbidden++] = st->st_ino;
    }
    return 0;
}

static int check_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    for (size_t i = 0; i < nforbidden; i++)
        if (st->st_dev == forbidden_dev[i] && st->st_ino == forbidden_ino[i])
            found_forbidden++;
    return 0;
}

/* How many entries of the tree at path (not following links) are one of
 * the forbidden files. */
static size_t forbidden_in(const char *path)
{
    found_forbidden = 0;
    nftw(path, check_entry, 16, FTW_PHYS);
    return found_forbidden;
}

static void forbid_tree(const char *path)
{
    nftw(path, note_forbidden, 16, FTW_PHYS);
}

/* ---- fl_link_tree ---- */

TEST(a_root_that_is_a_symlink_is_refused_and_nothing_outside_is_linked)
{
    make_dir("outside");
    make_file("outside/secret", "s3cret", 0600);
    make_link("outside", "deploy"); /* the build swapped its output for a link */
    make_dir("inst");
    char src[PATH_MAX], dst[PATH_MAX], p[PATH_MAX];
    path_in(src, sizeof(src), "deploy");
    path_in(dst, sizeof(dst), "inst/f");
    ASSERT_EQ(fl_link_tree(src, dst, NULL), -ELOOP);
    ASSERT(!exists("inst/f/secret"));
    path_in(p, sizeof(p), "outside");
    forbid_tree(p);
    path_in(p, sizeof(p), "inst");
    ASSERT_EQ(forbidden_in(p), 0);
    /* a root that is a file is refused as well */
    make_file("file", "x", 0644);
    path_in(src, sizeof(src), "file");
    path_in(dst, sizeof(dst), "inst/g");
    ASSERT_EQ(fl_link_tree(src, dst, NULL), -ENOTDIR);
}

TEST(an_inner_link_to_etc_is_recreated_as_a_link_and_no_etc_file_is_linked)
{
    make_dir("deploy");
    make_dir("deploy/lib");
    make_file("deploy/lib/app.py", "print(1)", 0644);
    make_link("/etc", "deploy/conf");          /* a directory replaced by a link */
    make_link("/etc/passwd", "deploy/lib/pw"); /* and a file */
    make_link("../../../../..", "deploy/up");  /* and a way up */
    char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX] = "";
    path_in(src, sizeof(src), "deploy");
    path_in(dst, sizeof(dst), "f");
    ASSERT_OK(fl_link_tree(src, dst, NULL));
    ASSERT(S_ISLNK(lmode("f/conf")));
    ASSERT(S_ISLNK(lmode("f/lib/pw")));
    ASSERT(S_ISLNK(lmode("f/up")));
    ASSERT(S_ISREG(lmode("f/lib/app.py")));
    char p[PATH_MAX];
    path_in(p, sizeof(p), "f/conf");
    ASSERT(readlink(p, target, sizeof(target) - 1) == 4);
    ASSERT_STR_EQ(target, "/etc");
    forbid_tree("/etc");
    ASSERT(nforbidden > 0);
    ASSERT_EQ(forbidden_in(dst), 0);
}

TEST(special_files_are_not_linked)
{
    make_dir("deploy");
    make_file("deploy/ok", "ok", 0644);
    char p[PATH_MAX], src[PATH_MAX], dst[PATH_MAX];
    path_in(p, sizeof(p), "deploy/fifo");
    ASSERT_OK(mkfifo(p, 0666));
    path_in(src, sizeof(src), "deploy");
    path_in(dst, sizeof(dst), "f");
    ASSERT_OK(fl_link_tree(src, dst, NULL));
    ASSERT(exists("f/ok"));
    ASSERT(!exists("f/fifo"));
}

/* The attacker: keeps swapping deploy/d (a real directory of files) for a
 * link to outside/ and back, while the tree is linked again and again. */
struct swapper {
    char dir[PATH_MAX], real[PATH_MAX], outside[PATH_MAX];
    atomic_bool stop;
    atomic_ulong swaps;
};

static void *swap_loop(void *arg)
{
    struct swapper *s = arg;
    while (!atomic_load(&s->stop)) {
        if (rename(s->dir, s->real) != 0)
            continue;
        if (symlink(s->outside, s->dir) == 0) {
            atomic_fetch_add(&s->swaps, 1);
            usleep(20); /* each state lasts long enough to be met */
            unlink(s->dir);
        }
        rename(s->real, s->dir);
        usleep(20);
    }
    return NULL;
}

static void start_swapper(struct swapper *s, pthread_t *t)
{
    make_dir("outside");
    for (int i = 0; i < 64; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "outside/secret%d", i);
        make_file(rel, "s3cret", 0600);
    }
    make_dir("deploy");
    make_dir("deploy/d");
    for (int i = 0; i < 64; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "deploy/d/f%d", i);
        make_file(rel, "code", 0644);
    }
    path_in(s->dir, sizeof(s->dir), "deploy/d");
    path_in(s->real, sizeof(s->real), "deploy/d.real");
    path_in(s->outside, sizeof(s->outside), "outside");
    atomic_init(&s->stop, false);
    atomic_init(&s->swaps, 0);
    ASSERT_OK(pthread_create(t, NULL, swap_loop, s));
}

TEST_TIMEOUT(a_directory_swapped_for_a_link_during_the_walk_never_leads_outside, 120)
{
    struct swapper s;
    pthread_t t;
    start_swapper(&s, &t);
    char p[PATH_MAX];
    path_in(p, sizeof(p), "outside");
    forbid_tree(p);
    ASSERT_EQ(nforbidden, 64);
    char src[PATH_MAX];
    path_in(src, sizeof(src), "deploy");
    int copies = 0;
    for (int i = 0; i < 400; i++) {
        char dst[PATH_MAX];
        snprintf(dst, sizeof(dst), "%s/copy%d", fl_test_tmpdir(), i);
        int rc = fl_link_tree(src, dst, NULL);
        /* refused (the entry became a link or vanished under the walk) or
         * done: either way nothing of outside/ is in the copy */
        ASSERT(rc == 0 || rc == -ELOOP || rc == -ENOTDIR || rc == -ENOENT || rc == -EEXIST);
        ASSERT_EQ(forbidden_in(dst), 0);
        ASSERT_OK(fl_remove_tree(dst));
        copies += rc == 0;
    }
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    ASSERT(atomic_load(&s.swaps) > 0);
    ASSERT(copies > 0);
}

/* ---- fl_remove_tree ---- */

TEST(removing_a_tree_removes_links_never_what_they_point_to)
{
    make_dir("outside");
    make_dir("outside/sub");
    make_file("outside/keep", "k", 0644);
    make_file("outside/sub/keep", "k", 0644);
    make_dir("tree");
    make_dir("tree/a");
    make_file("tree/a/file", "x", 0644);
    char p[PATH_MAX];
    path_in(p, sizeof(p), "outside");
    make_link(p, "tree/a/out");               /* absolute */
    make_link("../../outside", "tree/a/rel"); /* relative */
    make_link(p, "root-link");
    path_in(p, sizeof(p), "tree");
    ASSERT_OK(fl_remove_tree(p));
    ASSERT(!exists("tree"));
    ASSERT(exists("outside/keep") && exists("outside/sub/keep"));
    /* a root that is a link: the link goes, its target stays */
    path_in(p, sizeof(p), "root-link");
    ASSERT_OK(fl_remove_tree(p));
    ASSERT(!exists("root-link"));
    ASSERT(exists("outside/keep") && exists("outside/sub/keep"));
    ASSERT_OK(fl_remove_tree(p)); /* missing is fine */
}

TEST_TIMEOUT(a_directory_swapped_for_a_link_during_removal_keeps_outside_intact, 120)
{
    struct swapper s;
    pthread_t t;
    start_swapper(&s, &t);
    /* copies of deploy/ to remove while d keeps being swapped under them
     * is not the attack: the attacker swaps inside the tree being removed */
    char src[PATH_MAX];
    path_in(src, sizeof(src), "deploy");
    for (int i = 0; i < 400; i++) {
        /* refill d (the removal below empties it whenever it wins) */
        for (int k = 0; k < 64; k++) {
            char rel[PATH_MAX], p[PATH_MAX];
            snprintf(rel, sizeof(rel), "deploy/d/f%d", k);
            path_in(p, sizeof(p), rel);
            int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0)
                close(fd);
        }
        /* whatever it returns, racing the swapper, is beside the point:
         * what it removed is */
        (void)fl_remove_tree_at(AT_FDCWD, src, NULL);
        if (!exists("deploy"))
            make_dir("deploy");
        /* the swapper may put d back between these checks and the mkdir:
         * a d that is there by then is as good */
        if (!exists("deploy/d") && !exists("deploy/d.real")) {
            char p[PATH_MAX];
            path_in(p, sizeof(p), "deploy/d");
            ASSERT(mkdir(p, 0755) == 0 || errno == EEXIST);
        }
    }
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    for (int i = 0; i < 64; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "outside/secret%d", i);
        ASSERT(exists(rel));
    }
    ASSERT(atomic_load(&s.swaps) > 0);
}

/* ---- bounds ---- */

TEST(walks_past_their_bounds_stop_with_a_clear_error)
{
    make_dir("wide");
    for (int i = 0; i < 50; i++) {
        char rel[64];
        snprintf(rel, sizeof(rel), "wide/f%d", i);
        make_file(rel, "0123456789", 0644);
    }
    char deep[PATH_MAX] = "deep";
    make_dir(deep);
    for (int i = 0; i < 10; i++) {
        size_t len = strlen(deep);
        snprintf(deep + len, sizeof(deep) - len, "/d");
        make_dir(deep);
    }
    char wide[PATH_MAX], deep_root[PATH_MAX], dst[PATH_MAX];
    path_in(wide, sizeof(wide), "wide");
    path_in(deep_root, sizeof(deep_root), "deep");
    struct fl_tree_limits few = {.max_entries = 49};
    struct fl_tree_limits shallow = {.max_depth = 9};
    struct fl_tree_limits small = {.max_bytes = 499};

    path_in(dst, sizeof(dst), "c1");
    ASSERT_EQ(fl_link_tree(wide, dst, &few), FL_ETOOBIG);
    path_in(dst, sizeof(dst), "c2");
    ASSERT_EQ(fl_link_tree(deep_root, dst, &shallow), FL_ERANGE);
    path_in(dst, sizeof(dst), "c3");
    struct fl_tree_limits exact = {.max_entries = 50, .max_depth = 10};
    ASSERT_OK(fl_link_tree(wide, dst, &exact)); /* at the bound is fine */
    path_in(dst, sizeof(dst), "c4");
    ASSERT_OK(fl_link_tree(deep_root, dst, &exact));

    struct fl_tree_stats st;
    ASSERT_EQ(fl_normalize_tree(wide, &few, &st), FL_ETOOBIG);
    ASSERT_EQ(st.entries, 50);
    ASSERT_EQ(fl_normalize_tree(wide, &small, &st), FL_ETOOBIG);
    ASSERT(st.bytes > 499);
    ASSERT_EQ(fl_normalize_tree(deep_root, &shallow, &st), FL_ERANGE);
    struct fl_tree_limits enough = {.max_bytes = 500};
    ASSERT_OK(fl_normalize_tree(wide, &enough, &st));
    ASSERT_EQ(st.bytes, 500);
    ASSERT_EQ(st.entries, 50);

    int dirfd = open(fl_test_tmpdir(), O_RDONLY | O_DIRECTORY);
    ASSERT(dirfd >= 0);
    ASSERT_EQ(fl_remove_tree_at(dirfd, "deep", &shallow), FL_ERANGE);
    ASSERT_EQ(fl_remove_tree_at(dirfd, "wide", &few), FL_ETOOBIG);
    ASSERT_OK(fl_remove_tree_at(dirfd, "deep", NULL));
    ASSERT_OK(fl_remove_tree_at(dirfd, "wide", NULL));
    close(dirfd);
    ASSERT(!exists("deep") && !exists("wide"));
}

/* ---- fl_normalize_tree ---- */

TEST(normalizing_takes_every_power_away_from_a_build_output)
{
    make_dir("outside");
    make_file("outside/victim", "v", 0600);
    make_dir("deploy");
    make_file("deploy/suid", "#!/bin/sh\n", 04755);
    make_file("deploy/sgid", "x", 02711);
    make_file("deploy/plain", "x", 0666);
    make_dir("deploy/open");
    char p[PATH_MAX], q[PATH_MAX];
    path_in(p, sizeof(p), "deploy/open");
    ASSERT_OK(chmod(p, 01777));
    path_in(p, sizeof(p), "deploy/fifo");
    ASSERT_OK(mkfifo(p, 0666));
    path_in(p, sizeof(p), "deploy/open/fifo2");
    ASSERT_OK(mkfifo(p, 0666));
    make_link("/etc/shadow", "deploy/shadow");
    /* a hard link to a file outside the tree: changing it would change the
     * outside file */
    path_in(p, sizeof(p), "outside/victim");
    path_in(q, sizeof(q), "deploy/victim");
    ASSERT_OK(link(p, q));
    ASSERT_OK(lchown(q, 1234, 1234));
    path_in(p, sizeof(p), "deploy/open/other");
    ASSERT_OK(fl_file_write_atomic(p, "o", 1));
    ASSERT_OK(chown(p, 1234, 5678));

    char root[PATH_MAX];
    path_in(root, sizeof(root), "deploy");
    ASSERT_OK(chmod(root, 0777));
    struct fl_tree_stats st;
    ASSERT_OK(fl_normalize_tree(root, NULL, &st));
    ASSERT_EQ(st.removed, 2);
    ASSERT_EQ(lmode("deploy") & 07777, 0755);
    ASSERT_EQ(lmode("deploy/suid") & 07777, 0755);
    ASSERT_EQ(lmode("deploy/sgid") & 07777, 0755);
    ASSERT_EQ(lmode("deploy/plain") & 07777, 0644);
    ASSERT_EQ(lmode("deploy/open") & 07777, 0755);
    ASSERT_EQ(lmode("deploy/victim") & 07777, 0644);
    ASSERT(!exists("deploy/fifo") && !exists("deploy/open/fifo2"));
    ASSERT(S_ISLNK(lmode("deploy/shadow")));
    struct stat s1, s2;
    path_in(p, sizeof(p), "deploy/open/other");
    ASSERT_OK(lstat(p, &s1));
    ASSERT_EQ(s1.st_uid, 0);
    ASSERT_EQ(s1.st_gid, 0);
    /* the outside file: untouched, and no longer shared */
    path_in(p, sizeof(p), "outside/victim");
    path_in(q, sizeof(q), "deploy/victim");
    ASSERT_OK(stat(p, &s1));
    ASSERT_OK(lstat(q, &s2));
    ASSERT_EQ(s1.st_mode & 07777, 0600);
    ASSERT_EQ(s1.st_uid, 1234);
    ASSERT(s1.st_ino != s2.st_ino);
    ASSERT_EQ(s2.st_uid, 0);
    /* the real /etc/shadow kept its mode: the link was never followed */
    struct stat shadow;
    if (stat("/etc/shadow", &shadow) == 0)
        ASSERT((shadow.st_mode & 0004) == 0);
    /* a root that is a link is refused */
    make_link("deploy", "deploy-link");
    path_in(p, sizeof(p), "deploy-link");
    ASSERT_EQ(fl_normalize_tree(p, NULL, NULL), -ELOOP);
}

TEST(path_join_and_fmt_fail_instead_of_truncating)
{
    char out[16];
    ASSERT_OK(fl_path_join(out, sizeof(out), "/data", "code"));
    ASSERT_STR_EQ(out, "/data/code");
    ASSERT_OK(fl_path_fmt(out, sizeof(out), "%s/%x", "/run", 255u));
    ASSERT_STR_EQ(out, "/run/ff");
    /* exactly full: 15 characters and the NUL */
    ASSERT_OK(fl_path_join(out, sizeof(out), "/0123456789", "abc"));
    ASSERT_STR_EQ(out, "/0123456789/abc");
    /* one more: refused, and out names no file rather than a shorter one */
    ASSERT_EQ(fl_path_join(out, sizeof(out), "/0123456789", "abcd"), -ENAMETOOLONG);
    ASSERT_STR_EQ(out, "");
    ASSERT_EQ(fl_path_fmt(out, sizeof(out), "%s/code/sha256/%s", "/data", "0123456789abcdef"),
              -ENAMETOOLONG);
    ASSERT_STR_EQ(out, "");
    /* a file operation on what a failed join left touches nothing */
    struct fl_buf b;
    fl_buf_init(&b, 64);
    ASSERT_EQ(fl_file_read(out, &b), 0);
    ASSERT_EQ(b.len, 0);
    fl_buf_release(&b);
    /* no room at all */
    ASSERT_EQ(fl_path_join(out, 0, "a", "b"), -ENAMETOOLONG);
}

TEST(file_write_atomic_refuses_a_path_too_long_for_its_temporary)
{
    char path[PATH_MAX];
    size_t n = fl_strlcpy(path, fl_test_tmpdir(), sizeof(path));
    path[n++] = '/';
    /* a name that fits PATH_MAX but not with ".tmp" after it */
    while (n < sizeof(path) - 3)
        path[n++] = 'x';
    path[n] = '\0';
    ASSERT_EQ(fl_file_write_atomic(path, "x", 1), -ENAMETOOLONG);
}
