/* oclgrind artefact, shown on a minimal kernel: oclgrind 21.10's --uninitialized plugin
 * aborts the work-item on LLVM's `freeze` instruction ("OCLGRIND FATAL ERROR
 * (./src/plugins/Uninitialized.cpp:1805) Unsupported instruction: freeze"), which clang's
 * optimiser emits for `a && b` on mask bits below. The work-item stops there, so its
 * results are wrong and nothing after it is checked. Upstream added `freeze` support after
 * 21.10 (jrprice/Oclgrind ee3a739, "Add support for LLVM's freeze instruction in
 * Uninitialized plugin (#220)", first released in v26.03.1).
 *
 *   oclgrind-kernel freeze.sim                   prints out[0] = 4
 *   oclgrind-kernel --uninitialized freeze.sim   the FATAL ERROR, and out[0] = 0
 *
 * clopt's fused kernel hits it in the pair loop of clopt_sweep_fused (stateless update
 * rules), so scripts/oclgrind_check.sh checks those runs for uninitialised values with
 * -cl-opt-disable (no `freeze`) and checks the optimised code for races and bounds. */
__kernel void pairs(__global const uint *mask_in, __global float *out)
{
    const uint mask = mask_in[0];
    float acc = 0;
    for (uint s = 0; s + 1 < 8; s += 2) {
        const bool a = (mask >> s) & 1, b = (mask >> (s + 1)) & 1;
        if (a && b)
            acc += 1;
        else if (a)
            acc += 2;
        else if (b)
            acc += 3;
    }
    out[get_global_id(0)] = acc;
}
