"""Noise and drawn labels as pure functions of (seed, image index): the heart of the sampling contract.

Image *i* of a request depends on (model, seed, i, label) alone, whatever else shares its batch and
whichever process draws it. The derivation uses only integer arithmetic on uint64 plus Box-Muller, so it is
independent of numpy's random-generator implementations and stable across releases (changing it is a new
contract version, see ``gancore.contract.version``):

    key      = mix(seed)
    base_i   = mix(key XOR i)
    h(i, j)  = mix(base_i + j · γ)                  γ = 0x9E3779B97F4A7C15
    u(i, j)  = (h(i, j) >> 11) · 2⁻⁵³               uniform in [0, 1)
    z[i, 2k], z[i, 2k+1] = r·cos θ, r·sin θ        r = √(−2 ln(1 − u(i, 2k+1))), θ = 2π·u(i, 2k+2)
    label_i  = h(i, 0) mod num_classes              (only when the request gives no label)

``mix`` is the SplitMix64 output function (Steele et al. 2014): x += γ, then two xor-shift-multiply rounds.
z is computed in float64 and rounded to float32.

Speed: every step works in place on per-thread buffers kept between calls, a block of rows at a time.
Fresh temporaries of a few hundred kB each cost more than the arithmetic (page faults on every allocation),
and a block keeps the working set in cache; the arithmetic and its order are exactly the formulas above
(``benchmarks/noise.py`` checks the bytes against them written out plainly). A request of a few images
(the usual count 1) is dominated by the fixed cost of each numpy call, so it takes the fewest calls: its
per-image bases in Python integers, then one in-place pass over one small array, every float64 ``log1p``,
``cos`` and ``sin`` still numpy's, on contiguous arrays as in every other path.
"""

from __future__ import annotations

import threading

import numpy as np

_GAMMA, _MUL1, _MUL2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # SplitMix64's constants
GAMMA, _M1, _M2 = np.uint64(_GAMMA), np.uint64(_MUL1), np.uint64(_MUL2)
_S11, _S27, _S30, _S31 = (np.uint64(s) for s in (11, 27, 30, 31))
_UNIT = 1.0 / 2**53
_TWO_PI = 2.0 * np.pi
MAX_SEED = 2**63 - 1
_MASK = 2**64 - 1
_BLOCK_ROWS = 64  # rows per block: 64 × 100 × 8 B = 50 kB per buffer, within L2
_FEW_ROWS = 16  # up to this many images, bases in Python integers (≈ 0.5 µs each, vs ≈ 12 µs of numpy calls)


def _mix_inplace(z: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """SplitMix64 output function on a uint64 array, in place (wrapping arithmetic); ``tmp`` is scratch."""
    z += GAMMA
    np.right_shift(z, _S30, out=tmp)
    z ^= tmp
    z *= _M1
    np.right_shift(z, _S27, out=tmp)
    z ^= tmp
    z *= _M2
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp
    return z


def _mix(x: np.ndarray) -> np.ndarray:
    z = np.array(x, dtype=np.uint64)  # a copy: the caller's array stays as it was
    return _mix_inplace(z, np.empty_like(z))


def _mix_int(x: int) -> int:
    """``mix`` of one value in Python integers (cheaper than numpy calls for a scalar; same result)."""
    x = (x + _GAMMA) & _MASK
    x = ((x ^ (x >> 30)) * _MUL1) & _MASK
    x = ((x ^ (x >> 27)) * _MUL2) & _MASK
    return x ^ (x >> 31)


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0 … {MAX_SEED}, got {seed}")


def _bases(seed: int, indices: np.ndarray) -> np.ndarray:
    _check_seed(seed)
    if len(indices) <= _FEW_ROWS:  # a handful of Python-integer mixes beat a dozen numpy calls
        return np.array(_few_bases(seed, indices), dtype=np.uint64)
    base = np.asarray(indices, dtype=np.uint64) ^ np.uint64(_mix_int(seed))  # a new array
    return _mix_inplace(base, np.empty_like(base))


def _few_bases(seed: int, indices: np.ndarray) -> list[int]:
    """``base_i`` of a few indices in Python integers (same values as the array path)."""
    key = _mix_int(seed)
    return [_mix_int(key ^ i) for i in np.asarray(indices, dtype=np.uint64).tolist()]


def image_indices(start: int, count: int) -> np.ndarray:
    """Indices ``start … start + count − 1`` as uint64 (the type the derivation works in)."""
    return np.arange(start, start + count, dtype=np.uint64)


_SCRATCH = threading.local()


def _scratch(pairs: int) -> tuple[np.ndarray, ...]:
    """This thread's block buffers for ``pairs`` (kept between calls: allocating a few hundred kB afresh
    each call costs page faults on every first touch, more than the arithmetic at small batches)."""
    cached = getattr(_SCRATCH, "buffers", None)
    if cached is None or cached[0] != pairs:
        shape, half = (_BLOCK_ROWS, 2 * pairs), (_BLOCK_ROWS, pairs)
        buffers = (
            np.empty(shape, dtype=np.uint64),  # h
            np.empty(shape, dtype=np.uint64),  # scratch for mix
            np.empty(shape, dtype=np.float64),  # u, then r and θ in place
            np.empty(half, dtype=np.float64),  # cos θ, then sin θ
            np.empty(shape, dtype=np.float64),  # z interleaved: r·cos θ, r·sin θ
        )
        cached = _SCRATCH.buffers = (pairs, buffers)
    return cached[1]


def latent(seed: int, indices: np.ndarray, latent_dim: int) -> np.ndarray:
    """z float32 [len(indices), latent_dim], row i a function of (seed, indices[i]) alone."""
    return _latent_of_bases(_bases(seed, indices), latent_dim)


def _row_bases(seeds: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``base_i`` of image ``indices[i]`` of ``seeds[i]``, each row its own seed (``_bases``' values)."""
    seeds = np.asarray(seeds)
    if len(seeds) != len(indices):
        raise ValueError(f"seeds and indices differ in length: {len(seeds)} and {len(indices)}")
    if len(seeds) and (int(seeds.min()) < 0 or int(seeds.max()) > MAX_SEED):
        raise ValueError(f"every seed must be in 0 … {MAX_SEED}")
    if len(seeds) <= _FEW_ROWS:
        keys = [_mix_int(s) for s in seeds.tolist()]
        rows = np.asarray(indices, dtype=np.uint64).tolist()
        return np.array([_mix_int(k ^ i) for k, i in zip(keys, rows, strict=True)], dtype=np.uint64)
    base = _mix(seeds.astype(np.uint64)) ^ np.asarray(indices, dtype=np.uint64)
    return _mix_inplace(base, np.empty_like(base))


def latent_rows(seeds: np.ndarray, indices: np.ndarray, latent_dim: int) -> np.ndarray:
    """z float32 [N, latent_dim], row i that of image ``indices[i]`` of ``seeds[i]`` (``latent``'s bytes).

    For callers whose rows come from unrelated seeds (the inference protocol's per-row inputs).
    """
    return _latent_of_bases(_row_bases(seeds, indices), latent_dim)


def _latent_of_bases(base: np.ndarray, latent_dim: int) -> np.ndarray:
    n, pairs = len(base), (latent_dim + 1) // 2
    if n <= _BLOCK_ROWS:  # small: one pass over small arrays has fewer calls and no page faults yet
        return _latent_small(base, pairs, latent_dim)
    steps = _steps(pairs)  # radius draws first, then angle draws: every later step is contiguous
    out = np.empty((n, latent_dim), dtype=np.float32)
    rows = _BLOCK_ROWS
    h, tmp, u, trig, z = _scratch(pairs)
    for start in range(0, n, rows):
        k = min(rows, n - start)
        hk, uk, tk, zk = h[:k], u[:k], trig[:k], z[:k]
        np.add(base[start : start + k, None], steps[None, :], out=hk)
        _mix_inplace(hk, tmp[:k])
        hk >>= _S11
        np.multiply(hk, _UNIT, out=uk, casting="unsafe")  # uint64 < 2⁵³ → float64 exactly, then · 2⁻⁵³
        r, theta = uk[:, :pairs], uk[:, pairs:]
        np.negative(r, out=r)
        np.log1p(r, out=r)
        r *= -2.0
        np.sqrt(r, out=r)
        theta *= _TWO_PI
        np.cos(theta, out=tk)
        np.multiply(tk, r, out=zk[:, 0::2])
        np.sin(theta, out=tk)
        np.multiply(tk, r, out=zk[:, 1::2])
        out[start : start + k] = zk[:, :latent_dim]  # float64 → float32, round to nearest
    return out


def _latent_small(base: np.ndarray, pairs: int, latent_dim: int) -> np.ndarray:
    """The same formulas with the fewest numpy calls (same operations on the same values, same bytes).

    ``h`` holds the radius draws (odd j) in its first ``pairs`` columns and the angle draws (even j) in the
    rest, as the blocked path does; ``log1p``, ``cos`` and ``sin`` run on contiguous arrays. The two
    products r·cos θ and r·sin θ are written straight into the float32 output: the ufunc computes each in
    float64 and rounds it to float32 on output, exactly what ``astype(np.float32)`` of the float64 does.
    """
    n = len(base)
    h = np.add(base[:, None], _steps(pairs)[None, :])
    _mix_inplace(h, np.empty_like(h))
    h >>= _S11
    u = np.multiply(h, _UNIT, casting="unsafe")  # uint64 < 2⁵³ → float64 exactly, then · 2⁻⁵³
    r = np.negative(u[:, :pairs])  # a contiguous copy
    np.log1p(r, out=r)
    r *= -2.0
    np.sqrt(r, out=r)
    theta = np.multiply(u[:, pairs:], _TWO_PI)  # contiguous
    out = np.empty((n, latent_dim), dtype=np.float32)
    np.multiply(r, np.cos(theta), out=out[:, 0::2], casting="same_kind")
    odd = latent_dim // 2  # the last sin θ is not used when latent_dim is odd
    np.multiply(r[:, :odd], np.sin(theta)[:, :odd], out=out[:, 1::2], casting="same_kind")
    return out


def _steps(pairs: int) -> np.ndarray:
    """j · γ (wrapping) for j = 1, 3, 5, … then j = 2, 4, 6, …: radius draws first, then angle draws."""
    cached = _STEPS.get(pairs)
    if cached is None:
        j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
        cached = _STEPS[pairs] = np.concatenate([j[0::2], j[1::2]]) * GAMMA
        cached.flags.writeable = False
    return cached


_STEPS: dict[int, np.ndarray] = {}  # per latent pair count: a few hundred bytes each, a handful of models


def drawn_labels(seed: int, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Class index per image for requests that give no label: int64 [len(indices)]."""
    if len(indices) <= _FEW_ROWS:  # h(i, 0) = mix(base_i), in Python integers
        _check_seed(seed)
        labels = [_mix_int(b) % num_classes for b in _few_bases(seed, indices)]
        return np.array(labels, dtype=np.int64)
    base = _bases(seed, indices)
    return (_mix(base) % np.uint64(num_classes)).astype(np.int64)


def drawn_labels_rows(seeds: np.ndarray, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """``drawn_labels`` with each row its own seed: int64 [N]."""
    return (_mix(_row_bases(seeds, indices)) % np.uint64(num_classes)).astype(np.int64)
