/* Repro kernel for host_store_shadow.c (an oclgrind artefact, not a clopt defect): reads a
 * buffer the host initialised and writes b[i] = a[i] + 1. */
__kernel void plus_one(__global const float *a, __global float *b)
{
    const size_t i = get_global_id(0);
    b[i] = a[i] + 1.0f;
}
