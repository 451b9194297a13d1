"""JAX implementation of hydrax's spline interpolation; twin of `reference.cem.spline` (same name and
signature, same conventions: zero-order ``searchsorted(tk, tq, 'right') - 1`` clipped to [0, K-1], linear
and not-a-knot cubic extrapolated with the end segments, cubic slopes by an unrolled Thomas algorithm).

``interp`` is traceable (it is called inside the jitted planner); the jitted public entry point with input
checks is `implementations.cem.planner.interp`.
"""

from __future__ import annotations

import jax.numpy as jnp


def _segment(tq, tk, last: int):
    return jnp.clip(jnp.searchsorted(tk, tq, side="right") - 1, 0, last)


def _slopes(tk, f):
    K = tk.shape[0]
    dx = tk[1:] - tk[:-1]
    m = (f[:, 1:] - f[:, :-1]) / dx[None, :, None]
    lower, diag, upper, rhs = [None], [dx[1]], [dx[0] + dx[1]], []
    d0, d1 = dx[0], dx[1]
    rhs.append(((d0 + 2 * (d0 + d1)) * d1 * m[:, 0] + d0 * d0 * m[:, 1]) / (d0 + d1))
    for i in range(1, K - 1):
        lower.append(dx[i])
        diag.append(2 * (dx[i - 1] + dx[i]))
        upper.append(dx[i - 1])
        rhs.append(3 * (dx[i] * m[:, i - 1] + dx[i - 1] * m[:, i]))
    da, db = dx[-2], dx[-1]
    lower.append(da + db)
    diag.append(da)
    upper.append(None)
    rhs.append((db * db * m[:, -2] + (2 * (da + db) + db) * da * m[:, -1]) / (da + db))
    c_prime = [upper[0] / diag[0]]
    d_prime = [rhs[0] / diag[0]]
    for i in range(1, K):
        denom = diag[i] - lower[i] * c_prime[i - 1]
        c_prime.append(upper[i] / denom if upper[i] is not None else None)
        d_prime.append((rhs[i] - lower[i] * d_prime[i - 1]) / denom)
    s = [None] * K
    s[K - 1] = d_prime[K - 1]
    for i in range(K - 2, -1, -1):
        s[i] = d_prime[i] - c_prime[i] * s[i + 1]
    return jnp.stack(s, axis=1)


def interp(tq, tk, knots, spline_type: str = "zero"):
    """Controls at times ``tq`` (T,) of the splines through ``knots`` (B, K, nu) at ``tk`` (K,): (B, T, nu)."""
    K = tk.shape[0]
    if spline_type == "zero":
        return knots[:, _segment(tq, tk, K - 1), :]
    i = _segment(tq, tk, K - 2)
    t0, t1 = tk[i], tk[i + 1]
    h = (t1 - t0)[None, :, None]
    dt = (tq - t0)[None, :, None]
    f0, f1 = knots[:, i, :], knots[:, i + 1, :]
    if spline_type == "linear":
        return f0 + (f1 - f0) * (dt / h)
    if spline_type == "cubic":
        s = _slopes(tk, knots)
        s0, s1 = s[:, i, :], s[:, i + 1, :]
        u = dt / h
        u2 = u * u
        u3 = u2 * u
        h00 = 2 * u3 - 3 * u2 + 1
        h10 = u3 - 2 * u2 + u
        h01 = -2 * u3 + 3 * u2
        h11 = u3 - u2
        return h00 * f0 + h10 * h * s0 + h01 * f1 + h11 * h * s1
    raise ValueError(f"unknown spline_type {spline_type!r}")
