/* Resuming: the configuration text a checkpoint must share with the run that resumes it,
 * the first difference between two of them, and clopt_solver_resume, which reads a
 * checkpoint's loop section, theta and state back. */
#include "solver.h"
#include "qn/qn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends one "key=value" line to *text. */
static int add_line(char **text, const char *key, const char *value)
{
    char *grown = clopt_format("%s%s=%s\n", *text, key, value);
    if (!grown)
        return -1;
    free(*text);
    *text = grown;
    return 0;
}

static int add_number(char **text, const char *key, double value)
{
    char buffer[40];
    /* In the C locale, so a checkpoint reads the same wherever it is resumed. */
    if (clopt_format_c(buffer, sizeof buffer, "%.17g", value) < 0)
        return -1;
    return add_line(text, key, buffer);
}

/* The hyper-parameters' lines, in table order: those that must match (info_only 0), or
 * the "info." ones. */
static int add_hyper_lines(char **text, const struct clopt_options *o, int info_only)
{
    size_t count;
    const struct clopt_hyper_param *rows = clopt_hyper_params(&count);
    for (size_t i = 0; i < count; ++i) {
        if (rows[i].info_only != info_only)
            continue;
        char key[64];
        snprintf(key, sizeof key, "%s%s", info_only ? "info." : "", rows[i].name);
        if (add_number(text, key, clopt_hyper_get(&rows[i], o)))
            return -1;
    }
    return 0;
}

static int ends_with_text(const char *s, const char *suffix)
{
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* "file crc32c=XXXXXXXX bytes=N" for the content of the file at path; NULL when it cannot
 * be read (the run will say so when it loads the file). */
static char *content_id(const char *path)
{
    enum { CHUNK = 1 << 20 };
    char why[256];
    /* Not a plain fopen: a FIFO would block here (clopt_open_input refuses what is not a
     * regular file, without waiting). */
    FILE *f = clopt_open_input(path, why, sizeof why);
    unsigned char *buffer = f ? malloc(CHUNK) : NULL;
    if (!buffer) {
        if (f)
            fclose(f);
        return NULL;
    }
    uint32_t crc = 0;
    unsigned long long bytes = 0;
    size_t got;
    while ((got = fread(buffer, 1, CHUNK, f)) > 0) {
        crc = clopt_crc32c(crc, buffer, got);
        bytes += got;
    }
    const int failed = ferror(f);
    fclose(f);
    free(buffer);
    return failed ? NULL : clopt_format("file crc32c=%08x bytes=%llu", (unsigned)crc, bytes);
}

/* The line of one input: a file named by its content (with its name as an "info." line,
 * which may differ: my.cl and ./my.cl are one objective), a number by its value (cond=1e3
 * and cond=1000 are one parameter), anything else as written. legacy: as format 1 wrote
 * it, the text as given. */
static int add_input(char **text, const char *key, const char *value, int is_file, int legacy)
{
    if (legacy)
        return add_line(text, key, value);
    double number;
    const char *why;
    char *id = is_file ? content_id(value) : NULL;
    int bad;
    if (id) {
        char info_key[128];
        snprintf(info_key, sizeof info_key, "info.%s.file", key);
        bad = add_line(text, key, id) || add_line(text, info_key, value);
    } else if (!is_file && clopt_parse_double(value, &number, &why) == 0) {
        bad = add_number(text, key, number);
    } else {
        bad = add_line(text, key, value);
    }
    free(id);
    return bad;
}

/* The configuration text; legacy: as checkpoint format 1 wrote it (inputs as given). */
static char *config_text(const struct clopt_solver *s, const struct clopt_options *in, int legacy)
{
    const struct clopt_options *o = &s->opts;
    char *text = clopt_format("%s", "");
    char iters[32];
    snprintf(iters, sizeof iters, "%llu", (unsigned long long)o->max_iters);
    int bad = !text || add_input(&text, "objective", in->objective,
                                 ends_with_text(in->objective, ".cl"), legacy);
    /* Parameters in key order, so that the order of the flags does not matter. */
    const char *last = "";
    for (size_t done = 0; done < in->n_params && !bad; ++done) {
        const struct clopt_param *next = NULL;
        for (size_t i = 0; i < in->n_params; ++i)
            if (strcmp(in->params[i].key, last) > 0 &&
                (!next || strcmp(in->params[i].key, next->key) < 0))
                next = &in->params[i];
        if (!next)
            break;
        char key[80];
        snprintf(key, sizeof key, "param.%s", next->key);
        const char *value = next->value ? next->value : "";
        bad = add_input(&text, key, value, ends_with_text(value, ".npy"), legacy);
        last = next->key;
    }
    char dim[32];
    snprintf(dim, sizeof dim, "%zu", s->n);
    bad = bad || add_line(&text, "dim", dim) ||
          add_line(&text, "precision", o->precision == CLOPT_DOUBLE ? "double" : "float") ||
          add_line(&text, "optimizer", s->optimizer->name) ||
          /* gd-BB only (its optimizer is "gd" too): files of other runs keep their text. */
          (s->optimizer->qn == CLOPT_QN_BB && add_number(&text, "gd_step", o->gd_step)) ||
          add_hyper_lines(&text, o, 0) || add_number(&text, "loss_every", (double)o->loss_every) ||
          add_hyper_lines(&text, o, 1) ||
          add_line(&text, "info.schedule", in->schedule ? in->schedule : "constant") ||
          add_number(&text, "info.init", (double)o->init) ||
          add_number(&text, "info.init_value", o->init_value) ||
          add_number(&text, "info.seed", (double)o->seed) ||
          /* The limits of the run, so that a resume with no options goes on under them. */
          add_line(&text, "info.max_iters", iters) || add_number(&text, "info.gtol", o->gtol) ||
          add_number(&text, "info.ftol", o->ftol) || add_number(&text, "info.target", o->target);
    if (!bad && o->n_axes > 0) {
        /* So that a resumed run's theta is written in the shape it had (info: the shape
         * does not change the trajectory). */
        char shape[CLOPT_MAX_AXES * 24] = "";
        for (size_t k = 0; k < o->n_axes; ++k)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", k ? "," : "",
                     o->shape[k]);
        bad = add_line(&text, "info.shape", shape);
    }
    if (bad) {
        free(text);
        return NULL;
    }
    return text;
}

/* The settings that define a run's trajectory, which a checkpoint must share with the run
 * that resumes it. Lines starting with "info." are recorded but may differ (the learning
 * rate and schedule, so that a diverged run can go on more carefully; the names of input
 * files, whose content counts). */
int clopt_build_config(struct clopt_solver *s, const struct clopt_options *in)
{
    s->config = config_text(s, in, 0);
    s->config_v1 = config_text(s, in, 1);
    if (!s->config || !s->config_v1)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    if (in->checkpoint) {
        s->checkpoint_path = clopt_format("%s", in->checkpoint);
        if (!s->checkpoint_path)
            return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    return CLOPT_OK;
}

/* The first line of `have` whose key is missing from `want` or has another value there,
 * ignoring "info." lines; NULL when they agree. */
static const char *first_difference(const char *have, const char *want, char *key, size_t key_size)
{
    for (const char *line = have; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        const char *eq = memchr(line, '=', len);
        if (eq && strncmp(line, "info.", 5) != 0) {
            const size_t key_len = (size_t)(eq - line) + 1; /* with '=' */
            const char *found = NULL;
            for (const char *w = want; *w;) {
                const char *w_end = strchr(w, '\n');
                const size_t w_len = w_end ? (size_t)(w_end - w) : strlen(w);
                if (w_len >= key_len && !strncmp(w, line, key_len)) {
                    found = w;
                    if (w_len != len || strncmp(w, line, len) != 0)
                        found = NULL;
                    break;
                }
                w = w_end ? w_end + 1 : w + w_len;
            }
            if (!found) {
                snprintf(key, key_size, "%.*s", (int)(key_len - 1), line);
                return line;
            }
        }
        line = end ? end + 1 : line + len;
    }
    return NULL;
}

/* The value of key in config text, for messages ("(none)" when absent). */
static void config_value(const char *config, const char *key, char *value, size_t size)
{
    const size_t key_len = strlen(key);
    for (const char *line = config; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > key_len && !strncmp(line, key, key_len) && line[key_len] == '=') {
            snprintf(value, size, "%.*s", (int)(len - key_len - 1), line + key_len + 1);
            return;
        }
        line = end ? end + 1 : line + len;
    }
    snprintf(value, size, "(none)");
}

static void get_bytes(const unsigned char *buffer, size_t *at, void *value, size_t size)
{
    memcpy(value, buffer + *at, size);
    *at += size;
}

static void set_pending_values(const struct clopt_solver *s, struct pending_loss *p, double f,
                               double g2)
{
    if (s->acc_size == sizeof(double)) {
        p->host[0] = f;
        p->host[1] = g2;
    } else {
        const float pair[2] = {(float)f, (float)g2};
        memcpy(p->host, pair, sizeof pair);
    }
}

/* Reads the "config" section into *config (NUL-terminated, heap). */
static int read_config_section(struct clopt_ckpt_reader *r, char **config, char *err, size_t errlen)
{
    uint64_t length;
    int status = clopt_ckpt_next(r, "config", &length, err, errlen);
    if (status == CLOPT_OK && length > ((uint64_t)1 << 20)) {
        snprintf(err, errlen, "checkpoint's configuration is implausibly large");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK) {
        *config = calloc(1, (size_t)length + 1);
        status = *config ? clopt_ckpt_read(r, *config, (size_t)length, err, errlen)
                         : CLOPT_ERR_OUT_OF_MEMORY;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(r, "config", err, errlen);
    return status;
}

/* mine less the lines of hyper-parameters that the optimizer does not read and that config
 * does not have: rows added to the table after a checkpoint was written (lbfgs's history
 * for a gd run) are no difference. Heap; NULL when out of memory. */
static char *without_unknown_unused(const struct clopt_solver *s, const char *config,
                                    const char *mine)
{
    char *kept = malloc(strlen(mine) + 1), *to = kept;
    if (!kept)
        return NULL;
    size_t count;
    const struct clopt_hyper_param *rows = clopt_hyper_params(&count);
    for (const char *line = mine; *line;) {
        const char *end = strchr(line, '\n');
        const size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        int drop = 0;
        for (size_t i = 0; i < count && !drop; ++i) {
            const size_t name_len = strlen(rows[i].name);
            char theirs[8];
            if (rows[i].info_only || len <= name_len || strncmp(line, rows[i].name, name_len) ||
                line[name_len] != '=' || clopt_hyper_used_by(&rows[i], s->optimizer->name))
                continue;
            config_value(config, rows[i].name, theirs, sizeof theirs);
            drop = !strcmp(theirs, "(none)");
        }
        if (!drop) {
            memcpy(to, line, len);
            to += len;
        }
        line += len;
    }
    *to = '\0';
    return kept;
}

/* A checkpoint resumes only under the settings that wrote it (info. lines aside), compared
 * as its format wrote them. */
static int check_config(struct clopt_solver *s, const char *path, const char *config,
                        uint32_t version)
{
    char *mine = without_unknown_unused(s, config, version >= 2 ? s->config : s->config_v1);
    if (!mine)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    char key[96], theirs[160], ours[160];
    const int same = !first_difference(config, mine, key, sizeof key) &&
                     !first_difference(mine, config, key, sizeof key);
    if (!same) {
        config_value(config, key, theirs, sizeof theirs);
        config_value(mine, key, ours, sizeof ours);
    }
    free(mine);
    if (same)
        return CLOPT_OK;
    if (!strncmp(theirs, "file ", 5) && !strncmp(ours, "file ", 5)) {
        char info_key[128], name[160];
        snprintf(info_key, sizeof info_key, "info.%s.file", key);
        config_value(s->config, info_key, name, sizeof name);
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "checkpoint '%s' was written with another %s file: '%s' now holds %s, "
                          "the run that wrote it read %s; resume with the file that run used",
                          path, key, name, ours + 5, theirs + 5);
    }
    return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                      "checkpoint '%s' was written with %s=%s but this run has %s=%s: "
                      "resume with the options of the run that wrote it",
                      path, key, theirs, key, ours);
}

/* What the loop section says beyond the resume point: the solver's step count and whether
 * its state was fresh. */
struct loop_counts {
    uint64_t step;
    uint32_t fresh;
};

/* Whether a decoded loop section could have been written by a run: checksums only show that
 * the bytes are the ones written, not that whoever wrote them was clopt. NULL, or what is
 * impossible. */
static const char *impossible_loop(const struct resume_point *p, uint32_t fresh, uint32_t have_good,
                                   uint32_t decided, int32_t reason)
{
    if (fresh > 1 || have_good > 1 || decided > 1)
        return "a flag of its loop section is neither 0 nor 1";
    if (reason < CLOPT_STOP_MAX_ITERS || reason > CLOPT_STOP_CANCELLED ||
        (decided && reason == CLOPT_STOP_CANCELLED))
        return "its loop section records a stop reason clopt does not have";
    if (p->last_good > p->t || isinf(p->prev_loss))
        return "its loop section records a last good iterate it cannot have";
    if (decided && p->decision_known &&
        !(isfinite(p->decided_loss) && isfinite(p->decided_grad_norm) &&
          !isinf(p->decided_prev_loss)))
        return "its loop section records a decision on values that are not finite";
    for (size_t i = 0; i < p->n_pending; ++i) {
        const struct pending_loss *q = &p->pending[i];
        if (q->iteration >= p->t || (i && q->iteration <= p->pending[i - 1].iteration))
            return "its pending losses are not of iterations before the resume point, in order";
    }
    return NULL;
}

/* Decodes a loop section of `length` bytes (see LOOP_HEAD) into point and counts. */
static int decode_loop(const struct clopt_solver *s, const unsigned char *loop, uint64_t length,
                       size_t head, struct resume_point *point, struct loop_counts *counts,
                       char *err, size_t errlen)
{
    uint64_t n = 0, count = 0;
    uint32_t elem = 0, n_state = 0, have_good = 0, decided = 0;
    int32_t reason = 0;
    size_t at = 0;
    get_bytes(loop, &at, &point->t, 8);
    get_bytes(loop, &at, &counts->step, 8);
    get_bytes(loop, &at, &n, 8);
    get_bytes(loop, &at, &elem, 4);
    get_bytes(loop, &at, &n_state, 4);
    get_bytes(loop, &at, &counts->fresh, 4);
    get_bytes(loop, &at, &have_good, 4);
    get_bytes(loop, &at, &decided, 4);
    get_bytes(loop, &at, &reason, 4);
    get_bytes(loop, &at, &point->last_good, 8);
    get_bytes(loop, &at, &point->prev_loss, 8);
    get_bytes(loop, &at, &count, 8);
    point->decision_known = head == LOOP_HEAD;
    if (point->decision_known) {
        get_bytes(loop, &at, &point->decided_loss, 8);
        get_bytes(loop, &at, &point->decided_grad_norm, 8);
        get_bytes(loop, &at, &point->decided_prev_loss, 8);
    }
    int status = CLOPT_OK;
    if (n != s->n || elem != s->elem_size || n_state != s->n_state ||
        count != (length - head) / LOOP_ENTRY) {
        snprintf(err, errlen, "its loop section does not fit its configuration");
        status = CLOPT_ERR_BAD_FILE;
    }
    point->have_good = have_good != 0;
    point->decided = decided != 0;
    point->reason = reason;
    point->n_pending = (size_t)count;
    for (size_t i = 0; i < point->n_pending && status == CLOPT_OK; ++i) {
        uint32_t reported, pad;
        double f, g2;
        struct pending_loss *p = &point->pending[i];
        get_bytes(loop, &at, &p->iteration, 8);
        get_bytes(loop, &at, &reported, 4);
        get_bytes(loop, &at, &pad, 4);
        get_bytes(loop, &at, &f, 8);
        get_bytes(loop, &at, &g2, 8);
        /* Only finite losses are ever checkpointed (settle_pending). */
        if (reported > 1 || pad != 0 || !isfinite(f) || !isfinite(g2) || g2 < 0) {
            snprintf(err, errlen, "its pending loss %zu is not one a run records", i);
            status = CLOPT_ERR_BAD_FILE;
        }
        p->reported = reported != 0;
        set_pending_values(s, p, f, g2);
    }
    const char *why = status == CLOPT_OK
                          ? impossible_loop(point, counts->fresh, have_good, decided, reason)
                          : NULL;
    if (why) {
        snprintf(err, errlen, "%s", why);
        status = CLOPT_ERR_BAD_FILE;
    }
    return status;
}

/* Reads the "loop" section into a new resume point (*point, heap). */
static int read_loop_section(const struct clopt_solver *s, struct clopt_ckpt_reader *r,
                             struct resume_point **point, struct loop_counts *counts, char *err,
                             size_t errlen)
{
    uint64_t length;
    unsigned char *loop = NULL;
    const size_t head = r->version >= 2 ? LOOP_HEAD : LOOP_HEAD_V1;
    int status = clopt_ckpt_next(r, "loop", &length, err, errlen);
    if (status == CLOPT_OK &&
        (length < head || length > head + RING_SIZE * LOOP_ENTRY || (length - head) % LOOP_ENTRY)) {
        snprintf(err, errlen, "its loop section has an impossible size");
        status = CLOPT_ERR_BAD_FILE;
    }
    if (status == CLOPT_OK) {
        loop = malloc((size_t)length);
        *point = calloc(1, sizeof **point);
        status = loop && *point ? clopt_ckpt_read(r, loop, (size_t)length, err, errlen)
                                : CLOPT_ERR_OUT_OF_MEMORY;
    }
    if (status == CLOPT_OK)
        status = clopt_ckpt_end_section(r, "loop", err, errlen);
    if (status == CLOPT_OK)
        status = decode_loop(s, loop, length, head, *point, counts, err, errlen);
    free(loop);
    return status;
}

static size_t first_not_finite(const struct clopt_solver *s, const char *chunk, size_t m)
{
    for (size_t i = 0; i < m; ++i) {
        double v;
        if (s->elem_size == sizeof(double)) {
            memcpy(&v, chunk + i * sizeof v, sizeof v);
        } else {
            float f;
            memcpy(&f, chunk + i * sizeof f, sizeof f);
            v = f;
        }
        if (!isfinite(v))
            return i;
    }
    return m;
}

/* Streams theta and the state to the device a file chunk (CLOPT_CKPT_CHUNK bytes) at a
 * time, checked as they stream; under ranks each keeps its own range of each chunk
 * (clopt_transfer), so no process holds more than a chunk whatever n. A failure of the file
 * is described in err (and returned with *in_file set); one of the device is already on
 * the context. */
static int read_vectors(struct clopt_solver *s, struct clopt_ckpt_reader *r, char *chunk, char *err,
                        size_t errlen, int *in_file)
{
    *in_file = 1;
    const size_t most = CLOPT_CKPT_CHUNK / s->elem_size;
    for (size_t k = 0; k <= s->n_state; ++k) {
        uint64_t length;
        char tag[8] = "theta";
        if (k)
            memcpy(tag, (const char[]){'s', 't', 'a', 't', 'e', (char)('0' + k - 1), '\0'}, 7);
        int status = clopt_ckpt_next(r, tag, &length, err, errlen);
        if (status == CLOPT_OK && length != (uint64_t)s->n * s->elem_size) {
            snprintf(err, errlen, "section '%s' has the wrong size", tag);
            status = CLOPT_ERR_BAD_FILE;
        }
        for (size_t done = 0; done < s->n && status == CLOPT_OK;) {
            const size_t m = s->n - done < most ? s->n - done : most;
            status = clopt_ckpt_read(r, chunk, m * s->elem_size, err, errlen);
            /* A run never checkpoints a theta that is not finite (its state may be: an
             * overflowed adagrad sum is where that run is). */
            const size_t bad = status == CLOPT_OK && k == 0 ? first_not_finite(s, chunk, m) : m;
            if (bad < m) {
                snprintf(err, errlen, "theta[%zu] is not finite, which no run checkpoints",
                         done + bad);
                status = CLOPT_ERR_BAD_FILE;
            }
            if (status == CLOPT_OK) {
                status = clopt_transfer(s, k, chunk, s->opts.precision, done, m, 1);
                if (status != CLOPT_OK) {
                    *in_file = 0;
                    return status;
                }
            }
            done += m;
        }
        if (status == CLOPT_OK)
            status = clopt_ckpt_end_section(r, tag, err, errlen);
        if (status != CLOPT_OK)
            return status;
    }
    return CLOPT_OK;
}

/* Reads every section after the configuration: the loop section into *point, then theta
 * and the state, then the end of the file. */
static int read_sections(struct clopt_solver *s, const char *path, struct clopt_ckpt_reader *r,
                         struct resume_point **point, struct loop_counts *counts)
{
    char err[512];
    int status = read_loop_section(s, r, point, counts, err, sizeof err);
    if (status != CLOPT_OK)
        return clopt_fail(s->ctx, status, "checkpoint '%s': %s", path,
                          status == CLOPT_ERR_OUT_OF_MEMORY ? "out of host memory" : err);
    char *chunk = malloc(CLOPT_CKPT_CHUNK);
    if (!chunk)
        return clopt_fail(s->ctx, CLOPT_ERR_OUT_OF_MEMORY, "out of host memory");
    int in_file = 1;
    status = read_vectors(s, r, chunk, err, sizeof err, &in_file);
    free(chunk);
    if (status == CLOPT_OK)
        status = clopt_ckpt_close(r, 1, err, sizeof err);
    if (status != CLOPT_OK && in_file)
        return clopt_fail(s->ctx, status, "checkpoint '%s': %s", path, err);
    return status;
}

int clopt_solver_resume(struct clopt_solver *s, const char *path)
{
    char err[512];
    struct clopt_ckpt_reader r;
    char *config = NULL;
    struct resume_point *point = NULL;
    struct loop_counts counts = {0, 0};
    if (!path || !*path)
        return clopt_fail(s->ctx, CLOPT_ERR_INVALID_ARG,
                          "clopt_solver_resume needs a checkpoint file");
    int status = clopt_ckpt_open(&r, path, err, sizeof err);
    if (status == CLOPT_OK)
        status = read_config_section(&r, &config, err, sizeof err);
    if (status != CLOPT_OK)
        status = clopt_fail(s->ctx, status, "checkpoint '%s': %s", path,
                            status == CLOPT_ERR_OUT_OF_MEMORY ? "out of host memory" : err);
    if (status == CLOPT_OK)
        status = check_config(s, path, config, r.version);
    if (status == CLOPT_OK && s->optimizer->qn) {
        /* lbfgs, cg and gd-BB keep their own state (host/qn/qn_ckpt.c). */
        status = clopt_qn_read_checkpoint(s, &r, path);
    } else if (status == CLOPT_OK) {
        status = read_sections(s, path, &r, &point, &counts);
    }
    /* Every rank read the same bytes, but a file that differs on one rank's path (or a
     * device that failed on one) would leave the ranks to run apart: all return the first
     * failing rank's status, the others with its message. */
    status = clopt_ranks_agree(s, status, "while resuming");
    if (status == CLOPT_OK && !s->optimizer->qn) {
        s->step = counts.step;
        s->fresh_state = counts.fresh != 0;
        s->theta_generated = 0;
        free(s->resume);
        s->resume = point;
        point = NULL;
    }
    if (r.f)
        clopt_ckpt_close(&r, 0, NULL, 0);
    free(config);
    free(point);
    return status;
}
