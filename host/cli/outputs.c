/* See outputs.h. */
#include "outputs.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TRACE_HEADER "iteration,loss,grad_norm,lr,seconds\n"

/* An output written in place (the trace, the JSON): the file itself must open for writing.
 * An existing one is opened without truncation (its contents are the run's to decide, later);
 * a new one is created and removed again. O_NONBLOCK: a FIFO with no reader fails here
 * instead of hanging the run. */
static int check_in_place(const char *flag, const char *path)
{
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int created = 0;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        created = fd >= 0;
    }
    if (fd < 0) {
        print_error("%s '%s': cannot write it: %s", flag, path, strerror(errno));
        return EXIT_USAGE;
    }
    close(fd);
    if (created)
        unlink(path);
    return 0;
}

/* An output written through a temporary file and a rename (theta, checkpoints). */
static int check_replaced(const char *flag, const char *path)
{
    char err[512];
    if (clopt_output_check(path, err, sizeof err) == CLOPT_OK)
        return 0;
    print_error("%s '%s': %s", flag, path, err);
    return EXIT_USAGE;
}

/* What names a file for the alias test: its device and inode when it exists, else its
 * directory's and its last component (two outputs not yet written can still be one). */
struct file_id {
    const char *flag, *path;
    int known, exists, output;
    dev_t dev;
    ino_t ino;
    const char *base;
};

static void identify(struct file_id *id)
{
    struct stat st;
    id->known = 0;
    if (stat(id->path, &st) == 0) {
        id->known = id->exists = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
        return;
    }
    char *dir = strdup(id->path);
    if (!dir)
        return;
    char *slash = strrchr(dir, '/');
    const char *parent = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    id->base = slash ? id->path + (slash - dir) + 1 : id->path;
    if (stat(parent, &st) == 0) {
        id->known = 1;
        id->dev = st.st_dev;
        id->ino = st.st_ino;
    }
    free(dir);
}

static int same_file(const struct file_id *a, const struct file_id *b)
{
    if (!a->known || !b->known || a->exists != b->exists || a->dev != b->dev || a->ino != b->ino)
        return 0;
    return a->exists || !strcmp(a->base, b->base);
}

#define MAX_FILES (8 + MAX_PARAMS)

static void add_file(struct file_id *ids, size_t *n, const char *flag, const char *path, int output)
{
    if (!path || !*path || !strcmp(path, "-"))
        return;
    ids[*n] = (struct file_id){.flag = flag, .path = path, .output = output};
    identify(&ids[(*n)++]);
}

/* A resume reads its checkpoint before the first new one replaces it: --resume F
 * --checkpoint F is how a run goes on. Every other pair with an output is one file. */
static int may_share(const struct file_id *a, const struct file_id *b)
{
    return (!strcmp(a->flag, "--resume") && !strcmp(b->flag, "--checkpoint")) ||
           (!strcmp(b->flag, "--resume") && !strcmp(a->flag, "--checkpoint"));
}

static int refuse_aliases(const struct run_args *a)
{
    struct file_id ids[MAX_FILES];
    size_t n = 0;
    add_file(ids, &n, "--out", a->out_path, 1);
    add_file(ids, &n, "--trace", a->trace_path, 1);
    add_file(ids, &n, "--json", a->json_path, 1);
    add_file(ids, &n, "--checkpoint", a->opts.checkpoint, 1);
    add_file(ids, &n, "--init", a->init_file, 0);
    add_file(ids, &n, "--resume", a->resume_path, 0);
    if (a->opts.objective && ends_with(a->opts.objective, ".cl"))
        add_file(ids, &n, "--objective", a->opts.objective, 0);
    for (size_t i = 0; i < a->opts.n_params; ++i)
        if (a->params[i].value && ends_with(a->params[i].value, ".npy"))
            add_file(ids, &n, "--param", a->params[i].value, 0);
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j)
            if ((ids[i].output || ids[j].output) && same_file(&ids[i], &ids[j]) &&
                !may_share(&ids[i], &ids[j])) {
                print_error("%s '%s' and %s '%s' are the same file: writing one would destroy "
                            "the other; name another file",
                            ids[i].flag, ids[i].path, ids[j].flag, ids[j].path);
                return EXIT_USAGE;
            }
    return 0;
}

int check_run_outputs(const struct run_args *a)
{
    int rc = 0;
    if (a->opts.checkpoint &&
        ((rc = check_renamed_output("--checkpoint", a->opts.checkpoint)) != 0 ||
         (rc = check_replaced("--checkpoint", a->opts.checkpoint)) != 0))
        return rc;
    if (a->out_path && ((rc = check_renamed_output("--out", a->out_path)) != 0 ||
                        (rc = check_replaced("--out", a->out_path)) != 0))
        return rc;
    if (a->json_path && strcmp(a->json_path, "-") != 0 &&
        ((rc = check_output_path("--json", a->json_path)) != 0 ||
         (rc = check_in_place("--json", a->json_path)) != 0))
        return rc;
    if (a->trace_path && strcmp(a->trace_path, "-") != 0 &&
        ((rc = check_output_path("--trace", a->trace_path)) != 0 ||
         (rc = check_in_place("--trace", a->trace_path)) != 0))
        return rc;
    return refuse_aliases(a);
}

FILE *open_fresh_trace(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f && fputs(TRACE_HEADER, f) < 0) {
        fclose(f);
        return NULL;
    }
    return f;
}

/* Where the kept part of an existing trace ends: after the header and the rows of iterations
 * before `first` on the --loss-every grid. Cut at the first row from `first` on, at a row off
 * the grid (the closing row of the final theta: the resumed run writes the rows a longer run
 * would have) and at a line cut short by a kill. Rows of an abandoned run (one resumed from
 * PATH.prev) go too: the resumed run rewrites them. */
static long kept_length(FILE *f, uint64_t first, uint64_t loss_every)
{
    char line[512];
    long keep = 0;
    while (fgets(line, sizeof line, f)) {
        const size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n')
            break;
        char *end;
        errno = 0;
        const unsigned long long v = strtoull(line, &end, 10);
        if (end != line && *end == ',' && errno == 0 && (v >= first || v % loss_every != 0))
            break;
        keep = ftell(f);
    }
    return keep;
}

FILE *open_resumed_trace(const char *path, uint64_t first, uint64_t loss_every)
{
    FILE *f = fopen(path, "r+");
    if (!f)
        return errno == ENOENT ? open_fresh_trace(path) : NULL;
    const long keep = kept_length(f, first, loss_every ? loss_every : 1);
    if (keep < 0 || fflush(f) != 0 || ftruncate(fileno(f), keep) != 0 ||
        fseek(f, 0, SEEK_END) != 0 || (keep == 0 && fputs(TRACE_HEADER, f) < 0)) {
        fclose(f);
        return NULL;
    }
    return f;
}
