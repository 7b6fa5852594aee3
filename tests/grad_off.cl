/* An objective whose gradient is 5e-5 too large, relatively: `clopt check` fails it at the
 * double tolerance (1e-6) and would pass it at the float one (1e-2). The fault sweep
 * (tests/fault_injection.sh) checks with it, so that a fault which silently dropped the
 * double path would turn a failure into a pass and be seen. */
real clopt_fdf(real x, ulong i, real *g)
{
    (void)i;
    *g = (real)2.0001 * x;
    return x * x;
}
