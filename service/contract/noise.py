"""Noise and drawn labels as pure functions of (seed, image index): the heart of the sampling contract.

Image *i* of a request depends on (model, seed, i, label) alone, whatever else shares its batch and
whichever process draws it. The derivation uses only integer arithmetic on uint64 plus Box-Muller, so it is
independent of numpy's random-generator implementations and stable across releases (changing it is a new
contract version, see ``service.contract.version``):

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
(``benchmarks/noise.py`` checks the bytes against them written out plainly).
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


def _bases(seed: int, indices: np.ndarray) -> np.ndarray:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be in 0 … {MAX_SEED}, got {seed}")
    base = np.asarray(indices, dtype=np.uint64) ^ np.uint64(_mix_int(seed))  # a new array
    return _mix_inplace(base, np.empty_like(base))


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
    base = _bases(seed, indices)
    n, pairs = len(base), (latent_dim + 1) // 2
    if n <= _BLOCK_ROWS:  # small: whole-array expressions have fewer calls and no page faults yet
        return _latent_small(base, pairs, latent_dim)
    j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    # j · γ (wrapping), odd j (radius draws) first, then even j (angle draws): every later step is contiguous
    steps = np.concatenate([j[0::2], j[1::2]]) * GAMMA
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
    """The same formulas, as whole-array expressions (same operations in the same order, same bytes)."""
    j = np.arange(1, 2 * pairs + 1, dtype=np.uint64)
    h = _mix(base[:, None] + j[None, :] * GAMMA)
    u = (h >> _S11).astype(np.float64) * _UNIT
    r = np.sqrt(-2.0 * np.log1p(-u[:, 0::2]))
    theta = _TWO_PI * u[:, 1::2]
    z = np.empty((len(base), 2 * pairs), dtype=np.float64)
    z[:, 0::2] = r * np.cos(theta)
    z[:, 1::2] = r * np.sin(theta)
    return z[:, :latent_dim].astype(np.float32)


def drawn_labels(seed: int, indices: np.ndarray, num_classes: int) -> np.ndarray:
    """Class index per image for requests that give no label: int64 [len(indices)]."""
    base = _bases(seed, indices)
    return (_mix(base) % np.uint64(num_classes)).astype(np.int64)
