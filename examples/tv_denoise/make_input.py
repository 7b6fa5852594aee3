#!/usr/bin/env python3
"""Makes the inputs of the TV denoising example: clean.npy (a real photograph, 128x128,
values in [0, 1]) and noisy.npy (clean plus Gaussian noise of standard deviation 0.1 from a
fixed seed), float32 in C order, and noisy.png.

The picture is scipy's `ascent` (scipy.misc.ascent() in scipy 1.10, scipy.datasets.ascent()
later): 512x512 8-bit grayscale, public domain (see README.md here). It is averaged over 4x4
blocks to 128x128 so that the files stay small (64 KiB each) and the example runs in
seconds on a CPU device. The shipped files were made with scipy 1.10.1 and numpy; running
this again rewrites them (with the same seed and numpy's PCG64 the same bits).

    /usr/bin/python3 examples/tv_denoise/make_input.py [OUTDIR]   (default: this folder)
"""

import os
import sys
import warnings

import numpy as np

SIZE = 128
SIGMA = 0.1
SEED = 14


def ascent():
    """The 512x512 picture: the copy bundled in scipy.misc (scipy < 1.12, no network),
    else scipy.datasets (which downloads it once, through pooch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from scipy.misc import ascent as bundled
            return bundled()
        except (ImportError, AttributeError):
            pass
    from scipy import datasets
    return datasets.ascent()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    image = np.asarray(ascent(), dtype=np.float64)
    block = image.shape[0] // SIZE
    # Block means: a downsampled picture without aliasing, values in [0, 1].
    clean = image.reshape(SIZE, block, SIZE, block).mean(axis=(1, 3)) / 255.0
    noise = np.random.default_rng(SEED).normal(0.0, SIGMA, clean.shape)
    noisy = clean + noise
    np.save(os.path.join(out, "clean.npy"), clean.astype(np.float32))
    np.save(os.path.join(out, "noisy.npy"), noisy.astype(np.float32))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.imsave(os.path.join(out, "noisy.png"), np.clip(noisy, 0, 1), cmap="gray",
                   vmin=0, vmax=1)
    except ImportError:
        print("make_input: no matplotlib, so no noisy.png", file=sys.stderr)
    print("make_input: %dx%d, noise sigma %g (seed %d) in %s" % (SIZE, SIZE, SIGMA, SEED, out))


if __name__ == "__main__":
    main()
