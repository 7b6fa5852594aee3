#!/usr/bin/env python3
"""PSNR of the noisy and the denoised image against the clean one (peak 1: the images are
in [0, 1]), and, with --png FILE, one PNG with the three side by side (clean | noisy |
denoised).

    /usr/bin/python3 examples/tv_denoise/compare.py CLEAN.npy NOISY.npy DENOISED.npy [--png FILE]
"""

import argparse
import sys

import numpy as np


def psnr(reference, image):
    """Peak signal-to-noise ratio in dB for a peak value of 1."""
    mse = float(np.mean((np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def side_by_side(images, gap=4):
    """The images in a row, with white gaps between them, clipped to [0, 1]."""
    h = images[0].shape[0]
    parts = []
    for k, image in enumerate(images):
        if k:
            parts.append(np.ones((h, gap)))
        parts.append(np.clip(image, 0, 1))
    return np.concatenate(parts, axis=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("clean")
    p.add_argument("noisy")
    p.add_argument("denoised")
    p.add_argument("--png", help="write clean | noisy | denoised to this PNG")
    a = p.parse_args()
    clean, noisy, denoised = (np.load(f) for f in (a.clean, a.noisy, a.denoised))
    if not clean.shape == noisy.shape == denoised.shape:
        print("compare: the shapes differ: %s, %s, %s" % (clean.shape, noisy.shape,
                                                          denoised.shape), file=sys.stderr)
        return 2
    print("PSNR noisy    %.2f dB" % psnr(clean, noisy))
    print("PSNR denoised %.2f dB" % psnr(clean, denoised))
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        plt.imsave(a.png, side_by_side([clean, noisy, denoised]), cmap="gray", vmin=0, vmax=1)
        print("wrote", a.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
