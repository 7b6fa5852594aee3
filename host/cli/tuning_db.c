/* The tuning database: see tuning_db.h. The file is
 *   {"version": 1, "entries": [{"platform", "device", "driver", "objective", "optimizer",
 *     "precision", "size_class", "n", "knobs": {"wg", "epw", "vw", "fblock", "layout",
 *     "partials", "rwg", "acc", and optionally "gpcu", "fuse", "pf", "simd"},
 *     "gbytes_per_second", "default_gbytes_per_second"}, ...]}
 * Everything read from it is checked; anything unexpected makes the whole file "corrupted"
 * (reported, ignored), never a crash or a strange kernel. */
#include "tuning_db.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DB_BYTES (16u << 20)

/* The last four were added later: entries without them mean gpcu=0, fuse=1, the default
 * prefetch and the default SIMD width. */
#define N_KNOBS 12
#define N_REQUIRED_KNOBS 8
static const char *const knob_names[N_KNOBS] = {
    "wg", "epw", "vw", "fblock", "layout", "partials", "rwg", "acc", "gpcu", "fuse", "pf", "simd"};

static unsigned size_class(size_t n)
{
    unsigned c = 0;
    while (n > 1) {
        n >>= 1;
        ++c;
    }
    return c;
}

const char *tuning_default_path(char *buffer, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg)
        snprintf(buffer, size, "%s/clopt/tuning.json", xdg);
    else if (home && *home)
        snprintf(buffer, size, "%s/.cache/clopt/tuning.json", home);
    else
        return NULL;
    return buffer;
}

/* One knob as text; "def" for a field left at 0 (the default for the device type). */
static void knob_text(char *out, size_t size, size_t value, const char *one, const char *two)
{
    if (!value)
        snprintf(out, size, "def");
    else if (one && value == 1)
        snprintf(out, size, "%s", one);
    else if (two && value == 2)
        snprintf(out, size, "%s", two);
    else
        snprintf(out, size, "%zu", value);
}

void tuning_knobs_text(const struct clopt_knobs *k, char *text, size_t size)
{
    char v[10][24];
    knob_text(v[0], sizeof v[0], k->work_group, NULL, NULL);
    knob_text(v[1], sizeof v[1], k->elems_per_item, NULL, NULL);
    knob_text(v[2], sizeof v[2], k->vector_width, NULL, NULL);
    knob_text(v[3], sizeof v[3], k->loss_block, NULL, NULL);
    knob_text(v[4], sizeof v[4], (size_t)k->layout, "contig", "strided");
    knob_text(v[5], sizeof v[5], (size_t)k->group_partials, "item", "group");
    knob_text(v[6], sizeof v[6], k->reduce_group, NULL, NULL);
    knob_text(v[7], sizeof v[7], (size_t)k->accumulate, "double", "kahan");
    knob_text(v[8], sizeof v[8], k->prefetch, "off", NULL);
    knob_text(v[9], sizeof v[9], k->simd_bits, NULL, NULL);
    snprintf(text, size,
             "wg=%s,epw=%s,vw=%s,fblock=%s,layout=%s,partials=%s,rwg=%s,acc=%s,gpcu=%zu,pf=%s,"
             "simd=%s,fuse=%zu",
             v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], k->groups_per_cu, v[8], v[9],
             k->fuse ? k->fuse : 1);
}

/* The whole file as a JSON tree; 1 when there is no file, -1 when it is corrupted. */
static int load(const char *path, cJSON **root, char *why, size_t why_size)
{
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return 1;
        snprintf(why, why_size, "cannot read tuning database '%s': %s", path, strerror(errno));
        return -1;
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

/* An entry's knobs, each a whole number in its range; 0 when they all are. */
static int read_knobs(const cJSON *entry, struct clopt_knobs *k)
{
    const cJSON *knobs = cJSON_GetObjectItemCaseSensitive(entry, "knobs");
    if (!cJSON_IsObject(knobs))
        return -1;
    double v[N_KNOBS] = {[8] = 0, [9] = 1, [10] = 0, [11] = 0};
    const double low[N_KNOBS] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0};
    const double high[N_KNOBS] = {1 << 20, 1 << 20, 16,   1024, 2,       2,
                                  1 << 20, 2,       1024, 32,   1 << 20, 512};
    for (size_t i = 0; i < N_KNOBS; ++i) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(knobs, knob_names[i]);
        if (!item && i >= N_REQUIRED_KNOBS)
            continue;
        if (!cJSON_IsNumber(item))
            return -1;
        v[i] = item->valuedouble;
        if (!(v[i] >= low[i] && v[i] <= high[i]) || v[i] != floor(v[i]))
            return -1;
    }
    if (v[11] != 0 && v[11] != 256 && v[11] != 512)
        return -1;
    *k = (struct clopt_knobs){.work_group = (size_t)v[0],
                              .elems_per_item = (size_t)v[1],
                              .vector_width = (size_t)v[2],
                              .loss_block = (size_t)v[3],
                              .layout = (int)v[4],
                              .group_partials = (int)v[5],
                              .reduce_group = (size_t)v[6],
                              .accumulate = (int)v[7],
                              .groups_per_cu = (size_t)v[8],
                              .fuse = (size_t)v[9],
                              .prefetch = (size_t)v[10],
                              .simd_bits = (size_t)v[11]};
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

int tuning_lookup(const char *path, const struct tuning_key *key, struct clopt_knobs *knobs,
                  char *how, size_t how_size, char *why, size_t why_size)
{
    cJSON *root;
    int rc = load(path, &root, why, why_size);
    if (rc != 0)
        return rc;
    const unsigned want = size_class(key->n);
    const cJSON *best = NULL;
    unsigned best_distance = UINT32_MAX, best_class = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(root, "entries"))
    {
        unsigned c;
        struct clopt_knobs k;
        if (!cJSON_IsObject(entry) || entry_class(entry, &c) || read_knobs(entry, &k)) {
            snprintf(why, why_size, "tuning database '%s' is corrupted (an entry is malformed)",
                     path);
            cJSON_Delete(root);
            return -1;
        }
        if (!matches(entry, key))
            continue;
        const unsigned distance = c > want ? c - want : want - c;
        if (distance < best_distance) {
            best = entry;
            best_distance = distance;
            best_class = c;
        }
    }
    rc = 1;
    if (best) {
        read_knobs(best, knobs);
        snprintf(how, how_size, "%s size class 2^%u", best_distance ? "nearest" : "exact",
                 best_class);
        rc = 0;
    }
    cJSON_Delete(root);
    return rc;
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

int tuning_store(const char *path, const struct tuning_key *key, const struct clopt_knobs *knobs,
                 double gbytes_per_second, double default_gbytes_per_second, char *why,
                 size_t why_size)
{
    cJSON *root;
    int loaded = load(path, &root, why, why_size);
    int rc = loaded < 0 ? 1 : 0; /* a corrupted file is replaced */
    if (loaded != 0) {
        root = cJSON_CreateObject();
        if (!root || !cJSON_AddNumberToObject(root, "version", 1) ||
            !cJSON_AddArrayToObject(root, "entries")) {
            cJSON_Delete(root);
            snprintf(why, why_size, "out of memory");
            return -1;
        }
    }
    cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
    const unsigned c = size_class(key->n);
    for (int i = cJSON_GetArraySize(entries) - 1; i >= 0; --i) {
        const cJSON *e = cJSON_GetArrayItem(entries, i);
        unsigned ec;
        if (cJSON_IsObject(e) && matches(e, key) && !entry_class(e, &ec) && ec == c)
            cJSON_DeleteItemFromArray(entries, i);
    }
    cJSON *entry = cJSON_CreateObject(), *k = cJSON_CreateObject();
    const double values[N_KNOBS] = {(double)knobs->work_group,
                                    (double)knobs->elems_per_item,
                                    (double)knobs->vector_width,
                                    (double)knobs->loss_block,
                                    knobs->layout,
                                    knobs->group_partials,
                                    (double)knobs->reduce_group,
                                    knobs->accumulate,
                                    (double)knobs->groups_per_cu,
                                    (double)(knobs->fuse ? knobs->fuse : 1),
                                    (double)knobs->prefetch,
                                    (double)knobs->simd_bits};
    int ok = entry && k;
    for (size_t i = 0; i < N_KNOBS && ok; ++i)
        ok = cJSON_AddNumberToObject(k, knob_names[i], values[i]) != NULL;
    ok = ok && cJSON_AddStringToObject(entry, "platform", key->platform) &&
         cJSON_AddStringToObject(entry, "device", key->device) &&
         cJSON_AddStringToObject(entry, "driver", key->driver) &&
         cJSON_AddStringToObject(entry, "objective", key->objective) &&
         cJSON_AddStringToObject(entry, "optimizer", key->optimizer) &&
         cJSON_AddStringToObject(entry, "precision", key->precision) &&
         cJSON_AddNumberToObject(entry, "size_class", c) &&
         cJSON_AddNumberToObject(entry, "n", (double)key->n) &&
         cJSON_AddItemToObject(entry, "knobs", k) &&
         cJSON_AddNumberToObject(entry, "gbytes_per_second", gbytes_per_second) &&
         cJSON_AddNumberToObject(entry, "default_gbytes_per_second", default_gbytes_per_second);
    if (ok)
        k = NULL; /* owned by entry now */
    ok = ok && cJSON_AddItemToArray(entries, entry);
    if (ok)
        entry = NULL;
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(entry);
    cJSON_Delete(k);
    cJSON_Delete(root);
    if (!text) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    const size_t len = strlen(path);
    char *tmp = malloc(len + 8), *dir = malloc(len + 1);
    FILE *f = NULL;
    if (tmp && dir) {
        memcpy(dir, path, len + 1);
        snprintf(tmp, len + 8, "%s.tmp", path);
        if (make_parent(dir) == 0)
            f = fopen(tmp, "w");
    }
    int bad = !f;
    if (f) {
        bad = fprintf(f, "%s\n", text) < 0;
        bad |= fclose(f) != 0;
    }
    if (!bad)
        bad = rename(tmp, path) != 0;
    if (bad) {
        snprintf(why, why_size, "cannot write tuning database '%s': %s", path, strerror(errno));
        if (tmp)
            remove(tmp);
        rc = -1;
    }
    free(tmp);
    free(dir);
    free(text);
    return rc;
}
