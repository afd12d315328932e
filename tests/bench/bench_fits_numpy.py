#!/usr/bin/python3
"""numpy's reference for bench_fits_combine: read the raws' amplifier images
with astropy into one stack and time numpy.median(axis=0) over it.

usage: bench_fits_numpy.py RAW...   prints {"read_s": .., "median_s": .., "median_cpu_s": ..}
(wall seconds; median_cpu_s is the process CPU time of the median alone)
"""
import gc
import json
import sys
import time

import numpy as np
from astropy.io import fits

# astropy 5.2 runs a full garbage collection per compressed HDU it closes
gc.collect = lambda *args, **kwargs: 0


def main():
    t0 = time.perf_counter()
    planes = []
    for path in sys.argv[1:]:
        with fits.open(path) as hdul:
            planes.append(np.stack([np.asarray(h.data) for h in hdul[1:]]))
    stack = np.stack(planes)
    t1, c1 = time.perf_counter(), time.process_time()
    med = np.median(stack, axis=0)
    t2, c2 = time.perf_counter(), time.process_time()
    print(json.dumps({"read_s": t1 - t0, "median_s": t2 - t1, "median_cpu_s": c2 - c1,
                      "shape": list(stack.shape),
                      "checksum": float(med[0, 0, 0])}))


if __name__ == "__main__":
    main()
