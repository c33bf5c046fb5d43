"""Independent oracles for the tests: central finite differences on raw NumPy functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# Central differences have truncation error O(eps^2 f''') and rounding error O(ulp(f) / eps); in
# float64 with eps = 1e-6 and values of order 1 both stay below ~1e-9, so 1e-6 absolute plus 1e-5
# relative separates a correct rule from a wrong one (a wrong factor is off by O(1)).
EPS = 1e-6
ATOL = 1e-6
RTOL = 1e-5


def numeric_gradient(
    f: Callable[..., float], arrays: Sequence[np.ndarray], i: int, eps: float = EPS
) -> np.ndarray:
    """d f(*arrays) / d arrays[i] by central differences, element by element, in float64."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    x = arrays[i]
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + eps
        up = f(*arrays)
        x[index] = saved - eps
        down = f(*arrays)
        x[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


# Loop statements of the image primitives (autonet/primitives.py computes them with strided views
# and tensordot): one output pixel at a time, straight from each definition. Params are pairs.


def conv2d_by_loop(x, w, stride, padding, dilation):
    """out[n, o, i, j] = sum_{c, p, q} xpad[n, c, i*sh + p*dh, j*sw + q*dw] w[o, c, p, q]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = w.shape[2:]
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            window = xp[:, :, rows, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
            out[:, :, i, j] = np.einsum("ncpq,ocpq->no", window, w)
    return out


def linear_transpose(forward, y_shape, x_shape):
    """The matrix of a linear map x -> forward(x) (one column per unit x), transposed: its
    product with u is the map's transpose applied to u, without a formula of its own."""
    columns = []
    for k in range(int(np.prod(x_shape))):
        unit = np.zeros(int(np.prod(x_shape)))
        unit[k] = 1.0
        columns.append(forward(unit.reshape(x_shape)).ravel())
    matrix = np.stack(columns, axis=1).reshape(*y_shape, -1)
    return lambda u: np.tensordot(u, matrix, axes=u.ndim).reshape(x_shape)


def pool_by_loop(x, kernel_size, stride, padding, reduce, fill):
    """reduce (np.max, np.mean) of each window of x padded with `fill`, one window at a time."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], (2, 3))
    return out


def first_maxima_by_loop(x, kernel_size, stride, padding):
    """For each window, the (row, column) in x of its first maximum in row-major order."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    where = {}
    for n, c, i, j in np.ndindex(x.shape[0], x.shape[1], oh, ow):
        window = xp[n, c, i * sh : i * sh + kh, j * sw : j * sw + kw]
        p, q = np.unravel_index(np.argmax(window), window.shape)
        where[n, c, i, j] = (i * sh + p - ph, j * sw + q - pw)
    return where


def max_pool2d_scatter_by_loop(u, x, kernel_size, stride, padding):
    out = np.zeros(x.shape)
    for (n, c, i, j), (r, s) in first_maxima_by_loop(x, kernel_size, stride, padding).items():
        out[n, c, r, s] += u[n, c, i, j]
    return out


def max_pool2d_gather_by_loop(v, x, kernel_size, stride, padding):
    where = first_maxima_by_loop(x, kernel_size, stride, padding)
    out = np.zeros(x.shape[:2] + tuple(np.max(list(where), axis=0)[2:] + 1))
    for (n, c, i, j), (r, s) in where.items():
        out[n, c, i, j] = v[n, c, r, s]
    return out
