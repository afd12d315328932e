#!/usr/bin/python3
"""Independent reader of the FITS processing outputs (run by test_fits_independent).

astropy opens every file given and reads every HDU (decompressing tiles);
outputs must carry the provenance keys; numpy recomputes the master bias
from the raws (per-row median of the serial overscan, trim to DATASEC,
placement by DETSEC, median of the stack) and compares it with ours.

usage: fits_check.py --master MASTER.fits --raws RAW... [--outputs OUT...]
Exit status 0 when everything agrees, 1 otherwise (reasons on stderr).
"""
import argparse
import gc
import re
import sys

import numpy as np
from astropy.io import fits

# astropy 5.2 runs a full garbage collection for every compressed HDU it
# closes (about 40 ms each, seconds for a few raws); nothing here needs it.
gc.collect = lambda *args, **kwargs: 0

SECTION = re.compile(r"\[(\d+):(\d+),(\d+):(\d+)\]")


def section(text):
    m = SECTION.fullmatch(text.strip())
    if not m:
        raise ValueError(f"bad section {text!r}")
    return tuple(int(v) for v in m.groups())


def read_all(path):
    with fits.open(path) as hdul:
        for hdu in hdul:
            _ = hdu.header
            if hdu.data is not None:
                _ = np.asarray(hdu.data).sum()
        return fits.Header(hdul[0].header)


def assemble(path):
    """Overscan-corrected (per-row median) detector image of one raw."""
    with fits.open(path) as hdul:
        x1, x2, y1, y2 = section(hdul[0].header["DETSIZE"])
        det = np.full((y2 - y1 + 1, x2 - x1 + 1), np.nan, dtype=np.float32)
        ncols = hdul[1].header["NAXIS1"]
        for hdu in hdul[1:]:
            data = np.asarray(hdu.data, dtype=np.float64)
            dx1, dx2, dy1, dy2 = section(hdu.header["DATASEC"])
            # the serial overscan: BIASSEC, else the columns after the imaging ones
            # (small geometry: 8 columns; LATISS: 513-576)
            if "BIASSEC" in hdu.header:
                bx1, bx2, by1, by2 = section(hdu.header["BIASSEC"])
            else:
                prescan = 3 if ncols == 576 else 1
                width = 509 if ncols == 576 else 63
                bx1, bx2 = prescan + width + 1, ncols
            level = np.median(data[dy1 - 1:dy2, bx1 - 1:bx2].astype(np.float32), axis=1)
            trimmed = (data[dy1 - 1:dy2, dx1 - 1:dx2] - level[:, None]).astype(np.float32)
            tx1, tx2, ty1, ty2 = section(hdu.header["DETSEC"])
            if tx1 > tx2:
                trimmed = trimmed[:, ::-1]
            if ty1 > ty2:
                trimmed = trimmed[::-1, :]
            det[min(ty1, ty2) - 1:max(ty1, ty2), min(tx1, tx2) - 1:max(tx1, tx2)] = trimmed
        return det


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--master", required=True)
    ap.add_argument("--raws", nargs="+", required=True)
    ap.add_argument("--outputs", nargs="*", default=[])
    args = ap.parse_args()
    failures = []
    for path in args.raws:
        hdr = read_all(path)
        if hdr.get("INSTRUME") != "LATISS" or not isinstance(hdr.get("DAYOBS"), str):
            failures.append(f"{path}: INSTRUME/DAYOBS not as in real raws")
    for path in [args.master] + args.outputs:
        hdr = read_all(path)
        for key in ("OCPSVER", "OCPSNIN"):
            if key not in hdr:
                failures.append(f"{path}: no {key} provenance key")
        for i in range(1, int(hdr.get("OCPSNIN", 0)) + 1):
            if f"OCPSIN{i}" not in hdr:
                failures.append(f"{path}: OCPSNIN={hdr['OCPSNIN']} but no OCPSIN{i}")
    stack = np.stack([assemble(p) for p in args.raws])
    expect = np.median(stack, axis=0)
    with fits.open(args.master) as hdul:
        ours = np.asarray(hdul["IMAGE"].data, dtype=np.float64)
    if ours.shape != expect.shape:
        failures.append(f"master shape {ours.shape}, numpy {expect.shape}")
    else:
        diff = np.nanmax(np.abs(ours - expect))
        print(f"master vs numpy median of {len(args.raws)} raws: max |diff| = {diff:.3g} ADU")
        if not diff < 1e-3:
            failures.append(f"master differs from numpy's median by up to {diff} ADU")
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{len(args.raws) + 1 + len(args.outputs)} files read with astropy; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
