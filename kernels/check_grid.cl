/* Gradient check of a grid objective: for each sampled point j, its own gradient against a
 * fourth-order central difference of the loss terms of every point within the radius R of
 * j (the terms that depend on theta_j). The host sends, per sample, theta and the data
 * values on the box of radius 2R around j (zero outside the grid), in C order, and j's
 * coordinates; the kernel gathers each neighbour's box of radius R from it. */
#ifndef CLOPT_COMMON_CL
#ifndef CLOPT_REAL_DEFINED
#define CLOPT_REAL_DEFINED
typedef float real;
#endif
#endif
/* Only with a grid objective (CLOPT_GRID_RADIUS): alone, the file compiles to nothing. */
#ifdef CLOPT_GRID_RADIUS
#ifdef CLOPT_OBJECTIVE_DATA
#define CLOPT_CHECK_FDF(w, y, c, i, g) clopt_fdf_grid_data(w, y, c, i, g)
#else
real clopt_fdf_grid(const real *w, const ulong *c, ulong i, real *g);
#define CLOPT_CHECK_FDF(w, y, c, i, g) clopt_fdf_grid(w, c, i, g)
#endif
#ifndef CLOPT_CHECK_STEP
#define CLOPT_CHECK_STEP 0x1p-13
#endif
/* The big box: 4R + 1 values per axis. */
#define CLOPT_CHECK_W (4 * CLOPT_GRID_RADIUS + 1)
#define CLOPT_CHECK_BOX                                                                            \
    (CLOPT_CHECK_W * (CLOPT_GRID_AXES > 1 ? CLOPT_CHECK_W : 1) *                                   \
     (CLOPT_GRID_AXES > 2 ? CLOPT_CHECK_W : 1))

/* Offsets in [-r, r] per axis of box position m of a box of side 2r + 1. */
static inline void clopt_check_offsets(uint m, int r, int *off)
{
    for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
        off[k] = (int)(m % (uint)(2 * r + 1)) - r;
        m /= (uint)(2 * r + 1);
    }
}

/* The big box's index of the offsets (each within [-2R, 2R]). */
static inline uint clopt_check_at(const int *off)
{
    uint at = 0;
    for (int k = 0; k < CLOPT_GRID_AXES; ++k)
        at = at * CLOPT_CHECK_W + (uint)(off[k] + 2 * CLOPT_GRID_RADIUS);
    return at;
}

/* The loss terms of the points within R of the centre (whose value is xc), and the
 * objective's gradient at the centre in *g. */
static inline real clopt_check_grid_terms(__global const real *box, __global const real *data,
                                          const ulong *c, ulong j, real xc, real *g)
{
    const uint centre = (CLOPT_CHECK_BOX - 1) / 2;
    real sum = 0;
    for (uint e = 0; e < CLOPT_GRID_WINDOW; ++e) {
        int oe[3], of[3], o[3];
        clopt_check_offsets(e, CLOPT_GRID_RADIUS, oe);
        ulong cq[CLOPT_GRID_AXES];
        bool inside = true;
        long iq = 0;
        for (int k = 0; k < CLOPT_GRID_AXES; ++k) {
            const long ck = (long)c[k] + oe[k];
            inside = inside && ck >= 0 && ck < (long)CLOPT_GRID_SHAPE(k);
            cq[k] = (ulong)ck;
            iq = iq * (long)CLOPT_GRID_SHAPE(k) + ck;
        }
        if (!inside)
            continue;
        real w[CLOPT_GRID_WINDOW];
        for (uint f = 0; f < CLOPT_GRID_WINDOW; ++f) {
            clopt_check_offsets(f, CLOPT_GRID_RADIUS, of);
            for (int k = 0; k < CLOPT_GRID_AXES; ++k)
                o[k] = oe[k] + of[k];
            const uint at = clopt_check_at(o);
            w[f] = at == centre ? xc : box[at];
        }
        real gq;
        sum += CLOPT_CHECK_FDF(w, data[clopt_check_at(oe)], cq, (ulong)iq, &gq);
        if (e == (CLOPT_GRID_WINDOW - 1) / 2)
            *g = gq;
    }
    (void)j;
    return sum;
}

/* out[3s .. 3s + 2] = the objective's gradient, the finite difference, and the loss terms
 * at the sample point. boxes holds theta's box then the data's box per sample. */
__kernel void clopt_check_grid(__global const real *boxes, __global const ulong *index, ulong count,
                               __global real *out)
{
    const ulong s = get_global_id(0);
    if (s >= count)
        return;
    __global const real *box = boxes + s * 2 * CLOPT_CHECK_BOX;
    __global const real *data = box + CLOPT_CHECK_BOX;
    const ulong j = index[s];
    ulong c[CLOPT_GRID_AXES];
    ulong rest = j;
    for (int k = CLOPT_GRID_AXES - 1; k >= 0; --k) {
        c[k] = rest % CLOPT_GRID_SHAPE(k);
        rest /= CLOPT_GRID_SHAPE(k);
    }
    const real x = box[(CLOPT_CHECK_BOX - 1) / 2];
    real g = 0, unused;
    const real f = clopt_check_grid_terms(box, data, c, j, x, &g);
    const real h = (real)CLOPT_CHECK_STEP * fmax((real)1, fabs(x));
    real terms[4];
    for (int k = 0; k < 4; ++k)
        terms[k] =
            clopt_check_grid_terms(box, data, c, j, x + (real)(k < 2 ? k - 2 : k - 1) * h, &unused);
    out[3 * s] = g;
    out[3 * s + 1] = (8 * (terms[2] - terms[1]) - (terms[3] - terms[0])) / (12 * h);
    out[3 * s + 2] = f;
}
#endif /* CLOPT_GRID_RADIUS */
