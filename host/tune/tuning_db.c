/* The tuning database (clopt_tuning_db_* in clopt.h). The file is
 *   {"version": 1, "entries": [{"platform", "device", "driver", "objective", "optimizer",
 *     "precision", "size_class", "n", "knobs": {"wg", "epw", "vw", "fblock", "layout",
 *     "partials", "rwg", "acc", and optionally "gpcu", "fuse", "pf", "simd"},
 *     "gbytes_per_second", "default_gbytes_per_second"}, ...]}
 * Everything read from it is checked; anything unexpected makes the whole file "corrupted"
 * (reported, ignored), never a crash or a strange kernel. */
#include "abi.h"
#include "atomic_file.h"
#include "internal.h"
#include "knobs.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DB_BYTES (16u << 20)

struct clopt_tuning_db {
    char errmsg[640]; /* the last failure, or what a store replaced */
    char path[];
};

/* What an entry is for. */
struct tuning_key {
    const char *platform, *device, *driver;
    const char *objective, *optimizer, *precision;
    size_t n;
};

static unsigned size_class(size_t n)
{
    unsigned c = 0;
    while (n > 1) {
        n >>= 1;
        ++c;
    }
    return c;
}

/* The default path as a new heap string, as long as the environment makes it (a long
 * XDG_CACHE_HOME is never cut short into another path); NULL when neither variable is set
 * (*no_memory: or out of memory). */
static char *default_path(int *no_memory)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char *path = xdg && *xdg     ? clopt_format("%s/clopt/tuning.json", xdg)
                 : home && *home ? clopt_format("%s/.cache/clopt/tuning.json", home)
                                 : NULL;
    *no_memory = !path && ((xdg && *xdg) || (home && *home));
    return path;
}

/* The directory holding path must pass clopt_untrusted() (see the trust boundary in
 * clopt_tune.h); NULL when it does (or does not exist yet), else why not, in why. */
static const char *untrusted_directory(const char *path, char *why, size_t size)
{
    char *dir = clopt_format("%s", path);
    if (!dir)
        return NULL;
    char *slash = strrchr(dir, '/');
    const char *parent = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    struct stat st;
    char reason[96];
    const char *problem =
        stat(parent, &st) == 0 ? clopt_untrusted(&st, 1, reason, sizeof reason) : NULL;
    if (problem)
        snprintf(why, size,
                 "tuning database '%s' is not used: its directory '%s' is %s (fix its owner "
                 "or mode, or give another --tuning-db)",
                 path, parent, problem);
    free(dir);
    return problem ? why : NULL;
}

/* The whole file as a JSON tree; 1 when there is no file, -1 when it is corrupted or
 * cannot be read, -2 when it is not trusted (its knobs pick the kernels that run: see
 * the trust boundary in clopt_tune.h). */
static int load(const char *path, cJSON **root, char *why, size_t why_size)
{
    *root = NULL;
    if (untrusted_directory(path, why, why_size))
        return -2;
    /* Not through a symlink, and without waiting on a FIFO planted under the name. */
    const int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        if (errno == ELOOP) {
            snprintf(why, why_size, "tuning database '%s' is not used: it is a symlink", path);
            return -2;
        }
        snprintf(why, why_size, "cannot read tuning database '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    char reason[96];
    const char *problem =
        fstat(fd, &st) == 0 ? clopt_untrusted(&st, 0, reason, sizeof reason) : strerror(errno);
    FILE *f = problem ? NULL : fdopen(fd, "rb");
    if (!f) {
        close(fd);
        snprintf(why, why_size,
                 "tuning database '%s' is not used: it is %s (fix its owner or mode, or give "
                 "another --tuning-db)",
                 path, problem ? problem : strerror(errno));
        return -2;
    }
    char *text = malloc(MAX_DB_BYTES + 1);
    size_t length = text ? fread(text, 1, MAX_DB_BYTES + 1, f) : 0;
    fclose(f);
    if (!text || length > MAX_DB_BYTES) {
        free(text);
        snprintf(why, why_size, "tuning database '%s' is %s", path,
                 text ? "larger than 16 MiB" : "unreadable (out of memory)");
        return -1;
    }
    text[length] = '\0';
    *root = cJSON_ParseWithLength(text, length);
    free(text);
    const cJSON *version = *root ? cJSON_GetObjectItemCaseSensitive(*root, "version") : NULL;
    const cJSON *entries = *root ? cJSON_GetObjectItemCaseSensitive(*root, "entries") : NULL;
    if (!cJSON_IsObject(*root) || !cJSON_IsNumber(version) || version->valuedouble != 1 ||
        !cJSON_IsArray(entries)) {
        cJSON_Delete(*root);
        *root = NULL;
        snprintf(why, why_size,
                 "tuning database '%s' is corrupted (not a clopt tuning database "
                 "of version 1)",
                 path);
        return -1;
    }
    return 0;
}

static int same_string(const cJSON *entry, const char *name, const char *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(entry, name);
    return cJSON_IsString(item) && !strcmp(item->valuestring, value);
}

/* Whether the database can hold value for knob t: a whole number in the knob's range (0
 * only where it means the default), one of its words where only those are valid. */
static int storable(const struct clopt_knob_type *t, double v)
{
    if (v != floor(v))
        return 0;
    if (v == 0)
        return t->db_zero_ok || t->min == 0;
    if (!(v >= (double)t->min && v <= (double)t->max))
        return 0;
    if (!t->enumerated)
        return 1;
    for (size_t w = 0; w < CLOPT_KNOB_WORDS && t->words[w].text; ++w)
        if ((double)t->words[w].value == v)
            return 1;
    return 0;
}

/* An entry's knobs, each a whole number in its range; 0 when they all are. Knobs added
 * after the first version may be absent (db_optional: db_absent is their value). */
static int read_knobs(const cJSON *entry, struct clopt_knobs *k)
{
    const cJSON *knobs = cJSON_GetObjectItemCaseSensitive(entry, "knobs");
    if (!cJSON_IsObject(knobs))
        return -1;
    struct clopt_knobs read;
    memset(&read, 0, sizeof read);
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(knobs, t->name);
        if (!item && t->db_optional) {
            clopt_knob_set(t, &read, t->db_absent);
            continue;
        }
        if (!cJSON_IsNumber(item) || !storable(t, item->valuedouble))
            return -1;
        clopt_knob_set(t, &read, (size_t)item->valuedouble);
    }
    *k = read;
    return 0;
}

static int matches(const cJSON *entry, const struct tuning_key *key)
{
    return same_string(entry, "platform", key->platform) &&
           same_string(entry, "device", key->device) && same_string(entry, "driver", key->driver) &&
           same_string(entry, "objective", key->objective) &&
           same_string(entry, "optimizer", key->optimizer) &&
           same_string(entry, "precision", key->precision);
}

static int entry_class(const cJSON *entry, unsigned *c)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(entry, "size_class");
    if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 64 ||
        item->valuedouble != floor(item->valuedouble))
        return -1;
    *c = (unsigned)item->valuedouble;
    return 0;
}

static int db_fail(struct clopt_tuning_db *db, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int db_fail(struct clopt_tuning_db *db, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return status;
}

int clopt_tuning_db_open(struct clopt_tuning_db **db, const char *path, char *err, size_t errlen)
{
    char *made = NULL;
    int no_memory = 0;
    if (!db) {
        if (err && errlen)
            snprintf(err, errlen, "clopt_tuning_db_open needs db");
        return CLOPT_ERR_INVALID_ARG;
    }
    *db = NULL;
    if (!path || !*path)
        path = made = default_path(&no_memory);
    if (!path) {
        if (err && errlen)
            snprintf(err, errlen, "%s",
                     no_memory ? "out of memory"
                               : "neither XDG_CACHE_HOME nor HOME is set: give the tuning "
                                 "database's path");
        return no_memory ? CLOPT_ERR_OUT_OF_MEMORY : CLOPT_ERR_INVALID_ARG;
    }
    const size_t len = strlen(path);
    struct clopt_tuning_db *d = malloc(sizeof *d + len + 1);
    if (!d) {
        free(made);
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return CLOPT_ERR_OUT_OF_MEMORY;
    }
    d->errmsg[0] = '\0';
    memcpy(d->path, path, len + 1);
    free(made);
    *db = d;
    return CLOPT_OK;
}

void clopt_tuning_db_close(struct clopt_tuning_db *db)
{
    free(db);
}

const char *clopt_tuning_db_path(const struct clopt_tuning_db *db)
{
    return db ? db->path : "";
}

const char *clopt_tuning_db_errmsg(const struct clopt_tuning_db *db)
{
    return db ? db->errmsg : "no tuning database";
}

static const char *precision_name(enum clopt_precision p)
{
    return p == CLOPT_DOUBLE ? "double" : "float";
}

static struct tuning_key key_for(const struct clopt_context *ctx, const struct clopt_options *o)
{
    const struct clopt_device_info *dev = clopt_context_device(ctx);
    return (struct tuning_key){dev->platform,
                               dev->name,
                               dev->driver_version,
                               o->objective ? o->objective : "sphere",
                               o->optimizer ? o->optimizer : "gd",
                               precision_name(o->precision),
                               o->dim};
}

/* A failure of load(): its message is in db->errmsg. */
static int load_status(const struct clopt_tuning_db *db)
{
    return strncmp(db->errmsg, "cannot read", 11) == 0 ? CLOPT_ERR_IO : CLOPT_ERR_BAD_FILE;
}

int clopt_tuning_db_lookup(struct clopt_tuning_db *db, const struct clopt_context *ctx,
                           const struct clopt_options *problem, struct clopt_knobs *knobs,
                           int *found, char *how, size_t how_size)
{
    if (!db || !ctx || !problem || !knobs || !found)
        return db ? db_fail(db, CLOPT_ERR_INVALID_ARG,
                            "clopt_tuning_db_lookup needs ctx, problem, knobs and found")
                  : CLOPT_ERR_INVALID_ARG;
    *found = 0;
    struct clopt_options adopted;
    if (clopt_options_adopt(problem, &adopted, db->errmsg, sizeof db->errmsg) != CLOPT_OK)
        return CLOPT_ERR_INVALID_ARG;
    const struct tuning_key key = key_for(ctx, &adopted);
    cJSON *root;
    int rc = load(db->path, &root, db->errmsg, sizeof db->errmsg);
    if (rc != 0)
        return rc > 0 ? CLOPT_OK : rc == -2 ? CLOPT_ERR_IO : load_status(db);
    const unsigned want = size_class(key.n);
    const cJSON *best = NULL;
    unsigned best_distance = UINT32_MAX, best_class = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        unsigned c;
        struct clopt_knobs k;
        if (!cJSON_IsObject(entry) || entry_class(entry, &c) || read_knobs(entry, &k)) {
            cJSON_Delete(root);
            return db_fail(db, CLOPT_ERR_BAD_FILE,
                           "tuning database '%s' is corrupted (an entry is malformed)", db->path);
        }
        if (!matches(entry, &key))
            continue;
        const unsigned distance = c > want ? c - want : want - c;
        if (distance < best_distance) {
            best = entry;
            best_distance = distance;
            best_class = c;
        }
    }
    if (best) {
        read_knobs(best, knobs);
        /* The key has no clipping in it: a fused entry serves a clip_norm run unfused. */
        const int unfused = knobs->fuse > 1 && adopted.clip_norm > 0;
        if (unfused)
            knobs->fuse = 1;
        if (how && how_size)
            snprintf(how, how_size, "%s size class 2^%u%s", best_distance ? "nearest" : "exact",
                     best_class, unfused ? ", fuse=1 for options.clip_norm" : "");
        *found = 1;
    }
    cJSON_Delete(root);
    return CLOPT_OK;
}

/* mkdir -p of the directory holding path. */
static int make_parent(char *path)
{
    for (char *p = path + 1; *p; ++p) {
        if (*p != '/')
            continue;
        *p = '\0';
        const int failed = mkdir(path, 0755) != 0 && errno != EEXIST;
        *p = '/';
        if (failed)
            return -1;
    }
    return 0;
}

/* A new entry for key with the knobs; NULL when out of memory. */
static cJSON *make_entry(const struct tuning_key *key, const struct clopt_knobs *knobs,
                         double gbytes_per_second, double default_gbytes_per_second)
{
    cJSON *entry = cJSON_CreateObject(), *k = cJSON_CreateObject();
    int ok = entry && k;
    for (size_t r = 0; r < clopt_knob_count && ok; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const size_t v = clopt_knob_get(t, knobs);
        ok = cJSON_AddNumberToObject(k, t->name, (double)(v ? v : t->stored_zero)) != NULL;
    }
    ok = ok && cJSON_AddStringToObject(entry, "platform", key->platform) &&
         cJSON_AddStringToObject(entry, "device", key->device) &&
         cJSON_AddStringToObject(entry, "driver", key->driver) &&
         cJSON_AddStringToObject(entry, "objective", key->objective) &&
         cJSON_AddStringToObject(entry, "optimizer", key->optimizer) &&
         cJSON_AddStringToObject(entry, "precision", key->precision) &&
         cJSON_AddNumberToObject(entry, "size_class", size_class(key->n)) &&
         cJSON_AddNumberToObject(entry, "n", (double)key->n) &&
         cJSON_AddItemToObject(entry, "knobs", k);
    if (ok)
        k = NULL; /* owned by entry now */
    ok = ok && cJSON_AddNumberToObject(entry, "gbytes_per_second", gbytes_per_second) &&
         cJSON_AddNumberToObject(entry, "default_gbytes_per_second", default_gbytes_per_second);
    cJSON_Delete(k);
    if (!ok) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

/* text and a newline, through the atomic file writer; 0, or -1 with the reason in why. */
static int write_file(const char *path, const char *text, char *why, size_t why_size)
{
    char *dir = malloc(strlen(path) + 1);
    if (!dir || (strcpy(dir, path), make_parent(dir) != 0)) {
        snprintf(why, why_size, "cannot create its directory: %s",
                 dir ? strerror(errno) : "out of memory");
        free(dir);
        return -1;
    }
    free(dir);
    struct clopt_atomic_file file;
    /* 0644, not 0666: under a umask of 002 the file would be group-writable, and the next
     * lookup would refuse it (see load). */
    if (clopt_atomic_open(&file, path, 0644, why, why_size) != CLOPT_OK)
        return -1;
    if (fprintf(file.stream, "%s\n", text) < 0) {
        snprintf(why, why_size, "%s", strerror(errno));
        clopt_atomic_abort(&file);
        return -1;
    }
    return clopt_atomic_commit(&file, NULL, why, why_size) == CLOPT_OK ? 0 : -1;
}

int clopt_tuning_db_store(struct clopt_tuning_db *db, const struct clopt_context *ctx,
                          const struct clopt_options *problem, const struct clopt_knobs *knobs,
                          double gbytes_per_second, double default_gbytes_per_second, int *replaced)
{
    if (!db || !ctx || !problem || !knobs)
        return db ? db_fail(db, CLOPT_ERR_INVALID_ARG,
                            "clopt_tuning_db_store needs ctx, problem and knobs")
                  : CLOPT_ERR_INVALID_ARG;
    for (size_t r = 0; r < clopt_knob_count; ++r) {
        const struct clopt_knob_type *t = &clopt_knob_table[r];
        const size_t v = clopt_knob_get(t, knobs);
        if (!storable(t, (double)(v ? v : t->stored_zero)))
            return db_fail(db, CLOPT_ERR_INVALID_ARG,
                           "knobs.%s = %zu cannot be stored (fill the knobs in first, as "
                           "clopt_tune_result.knobs has them)",
                           t->field, v);
    }
    if (replaced)
        *replaced = 0;
    struct clopt_options adopted;
    if (clopt_options_adopt(problem, &adopted, db->errmsg, sizeof db->errmsg) != CLOPT_OK)
        return CLOPT_ERR_INVALID_ARG;
    const struct tuning_key key = key_for(ctx, &adopted);
    cJSON *root;
    const int loaded = load(db->path, &root, db->errmsg, sizeof db->errmsg);
    if (loaded == -2) /* never replaced: it may be another user's, or planted */
        return CLOPT_ERR_IO;
    if (loaded != 0) {
        root = cJSON_CreateObject();
        if (!root || !cJSON_AddNumberToObject(root, "version", 1) ||
            !cJSON_AddArrayToObject(root, "entries")) {
            cJSON_Delete(root);
            return db_fail(db, CLOPT_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    const unsigned c = size_class(key.n);
    for (int i = cJSON_GetArraySize(entries) - 1; i >= 0; --i) {
        const cJSON *e = cJSON_GetArrayItem(entries, i);
        unsigned ec;
        if (cJSON_IsObject(e) && matches(e, &key) && !entry_class(e, &ec) && ec == c)
            cJSON_DeleteItemFromArray(entries, i);
    }
    cJSON *entry = make_entry(&key, knobs, gbytes_per_second, default_gbytes_per_second);
    const int ok = entry && cJSON_AddItemToArray(entries, entry);
    if (!ok)
        cJSON_Delete(entry);
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return db_fail(db, CLOPT_ERR_OUT_OF_MEMORY, "out of memory");
    char why[512];
    const int bad = write_file(db->path, text, why, sizeof why);
    free(text);
    if (bad)
        return db_fail(db, CLOPT_ERR_IO, "cannot write tuning database '%s': %s", db->path, why);
    if (loaded < 0 && replaced)
        *replaced = 1; /* a corrupted file was replaced; errmsg says what was wrong */
    return CLOPT_OK;
}
