/* The tuner's space (host/tune/space.c), shared with the tuner (host/tune/tuner.c). */
#ifndef CLOPT_TUNE_TUNE_H
#define CLOPT_TUNE_TUNE_H

#include "clopt.h"
#include "knobs.h"

#define CLOPT_SPACE_KNOBS 16 /* rows of the knob table, at most */
#define CLOPT_SPACE_VALUES 8
#define CLOPT_SPACE_MAX_CANDIDATES 4096

/* The values to try per knob (table order), each a knob set with only its own field set,
 * so a candidate is the union of one value per knob. count 0: the knob is not searched. */
struct clopt_space {
    struct clopt_knobs values[CLOPT_SPACE_KNOBS][CLOPT_SPACE_VALUES];
    size_t count[CLOPT_SPACE_KNOBS];
};

/* Parses "KEY=V|V|...,..." (NULL or "": nothing) into sp; messages name
 * "tune_options.space". */
int clopt_space_parse(const char *spec, struct clopt_space *sp, char *err, size_t errlen);

/* Fills the knobs sp leaves out with the table's pruned list for the device type (those
 * that have one), then writes every combination (an odometer over the knobs, the first
 * fastest) that can be built into *out (allocated; *count of them) and *total (all
 * combinations). CLOPT_ERR_INVALID_ARG over CLOPT_SPACE_MAX_CANDIDATES (err says so),
 * CLOPT_ERR_OUT_OF_MEMORY. */
int clopt_space_candidates(struct clopt_space *sp, int cpu, struct clopt_tune_candidate **out,
                           size_t *count, char *err, size_t errlen);

/* Shuffles the candidates (Fisher-Yates with a 64-bit LCG seeded from seed). */
void clopt_space_shuffle(struct clopt_tune_candidate *c, size_t count, uint64_t seed);

#endif /* CLOPT_TUNE_TUNE_H */
