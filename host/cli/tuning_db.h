/* The per-device tuning database: the best knobs `clopt tune` found, kept in a JSON file
 * ($XDG_CACHE_HOME/clopt/tuning.json unless --tuning-db FILE) and used by `clopt run`. */
#ifndef CLOPT_TUNING_DB_H
#define CLOPT_TUNING_DB_H

#include "clopt.h"

#include <stddef.h>

/* What an entry is for. The size class is floor(log2(n)). */
struct tuning_key {
    const char *platform, *device, *driver;
    const char *objective, *optimizer, *precision;
    size_t n;
};

/* The default path; NULL (with a message in why) when neither XDG_CACHE_HOME nor HOME is
 * set. buffer receives the path. */
const char *tuning_default_path(char *buffer, size_t size);

/* The best entry for key: the same size class, else the nearest one. Returns 0 and fills
 * knobs and how ("exact size class 2^20" or "nearest size class 2^18"), 1 when the
 * database has no entry for this device and problem (or no file), -1 when the file is
 * unreadable or corrupted (why says how; the caller goes on with the defaults). */
int tuning_lookup(const char *path, const struct tuning_key *key, struct clopt_knobs *knobs,
                  char *how, size_t how_size, char *why, size_t why_size);

/* Adds or replaces the entry of key's size class, keeping the others; a corrupted file is
 * replaced (why says so, status 1). Written to a temporary file and renamed. Returns 0,
 * 1 (written over a corrupted file) or -1 (why says why). */
int tuning_store(const char *path, const struct tuning_key *key, const struct clopt_knobs *knobs,
                 double gbytes_per_second, double default_gbytes_per_second, char *why,
                 size_t why_size);

/* "wg=16,epw=4096,vw=16,fblock=16,layout=contig,partials=item,rwg=1,acc=double,gpcu=0,
 * pf=1024,simd=512,fuse=1" (one line); "def" for a field left at 0 (the default for the
 * device type). */
void tuning_knobs_text(const struct clopt_knobs *k, char *text, size_t size);

#endif
