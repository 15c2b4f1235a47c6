"""Blob pack/unpack throughput on a 100 MB float64 array, against numpy's own buffer calls.

The baselines are the least work any serializer must do: ``ndarray.tobytes()`` (one copy;
``tobytes(order="F")`` for a C-ordered 2-D array, which the column-major format must
transpose) and ``np.frombuffer`` (no copy). Blobs touch no database, so ``run`` reports
``backend="none"``. ``python benchmarks/bench_blob.py`` prints the numbers.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from datajoint_sa import blob

SIZE_BYTES = 100 * 1000 * 1000
REPEAT = 5


def best_seconds(func: Callable[[], Any], repeat: int = REPEAT) -> float:
    """The fastest of ``repeat`` runs (after one warm-up): the least noisy estimate."""
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _mb_s(n_bytes: int, seconds: float) -> float:
    return n_bytes / seconds / 1e6


def _case(array: np.ndarray, compress: bool, order: Literal["C", "F"] = "C") -> dict[str, float]:
    """Our pack/unpack against tobytes/frombuffer on the same array in the same run."""
    data = blob.pack(array, compress=compress)
    raw = array.tobytes(order=order)
    pack_s = best_seconds(lambda: blob.pack(array, compress=compress))
    unpack_s = best_seconds(lambda: blob.unpack(data))
    tobytes_s = best_seconds(lambda: array.tobytes(order=order))
    frombuffer_s = best_seconds(lambda: np.frombuffer(raw, dtype=array.dtype))
    assert np.array_equal(blob.unpack(data), array)
    numbers = {
        "pack_mb_s": _mb_s(array.nbytes, pack_s),
        "unpack_mb_s": _mb_s(array.nbytes, unpack_s),
        "tobytes_mb_s": _mb_s(array.nbytes, tobytes_s),
        "frombuffer_mb_s": _mb_s(array.nbytes, frombuffer_s),
        "pack_ratio": pack_s / tobytes_s,  # ours / numpy, lower is better
        "unpack_ratio": unpack_s / frombuffer_s,
        "blob_to_array_size": len(data) / array.nbytes,
    }
    if data.startswith(blob.ZLIB_PREFIX):  # zlib itself is the floor when compressing
        stream = data[len(blob.ZLIB_PREFIX) + 8 :]
        zlib_pack_s = best_seconds(lambda: zlib.compress(raw, blob.ZLIB_LEVEL))
        zlib_unpack_s = best_seconds(lambda: zlib.decompress(stream))
        numbers["zlib_compress_mb_s"] = _mb_s(array.nbytes, zlib_pack_s)
        numbers["zlib_decompress_mb_s"] = _mb_s(array.nbytes, zlib_unpack_s)
    return numbers


def measure(size_bytes: int = SIZE_BYTES) -> dict[str, dict[str, float]]:
    """Throughput per case: random floats (compressed or not), a C-ordered 2-D array, zeros."""
    n = size_bytes // 8
    rng = np.random.default_rng(0)
    random_1d = rng.random(n)
    cases = {
        "float64_random_uncompressed": _case(random_1d, compress=False),
        # compress=True: the sample shows random floats do not compress, so none is attempted
        "float64_random_compress_true": _case(random_1d, compress=True),
    }
    del random_1d
    rows = 2000
    random_2d = rng.random((rows, n // rows))  # C order: the format stores column-major
    cases["float64_2d_c_order_uncompressed"] = _case(random_2d, compress=False, order="F")
    del random_2d
    cases["float64_zeros_compressed"] = _case(np.zeros(n), compress=True)
    return cases


def run(urls: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows for ``python -m benchmarks``; ``urls`` is unused (no database involved)."""
    return [
        {"benchmark": f"blob {name} {SIZE_BYTES // 10**6}MB", "backend": "none", **numbers}
        for name, numbers in measure().items()
    ]


def main() -> None:
    for name, numbers in measure().items():
        print(f"{name}:")
        print(
            f"  pack   {numbers['pack_mb_s']:10.0f} MB/s   tobytes    "
            f"{numbers['tobytes_mb_s']:10.0f} MB/s   ratio {numbers['pack_ratio']:.2f}"
        )
        print(
            f"  unpack {numbers['unpack_mb_s']:10.0f} MB/s   frombuffer "
            f"{numbers['frombuffer_mb_s']:10.0f} MB/s   ratio {numbers['unpack_ratio']:.2f}"
        )
        if "zlib_compress_mb_s" in numbers:
            print(
                f"  zlib alone: compress {numbers['zlib_compress_mb_s']:.0f} MB/s, "
                f"decompress {numbers['zlib_decompress_mb_s']:.0f} MB/s"
            )
        print(f"  blob size / array size {numbers['blob_to_array_size']:.4f}")


if __name__ == "__main__":
    main()
