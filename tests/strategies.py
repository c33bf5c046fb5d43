"""Hypothesis strategies for the engine's tests: bounded float64 arrays, the tutorial's problem at
drawn sizes, and for every primitive of the table a case (its inputs and params) a margin away
from its kinks. Shapes and floats come from autonet.testing, the strategies offered to users."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autonet.testing import floats
from autonet.testing import shapes as small_shapes


def arrays(shape, low=-2.0, high=2.0, away_from_zero=0.0):
    """float64 arrays of `shape` with elements in [low, high] and |x| >= away_from_zero."""
    elements = floats(low, high)
    if away_from_zero:
        elements = elements.filter(lambda v: abs(v) >= away_from_zero)
    return hnp.arrays(np.float64, shape, elements=elements)


class SeedProblem(NamedTuple):
    """The tutorial's network at sizes (m, n, p, k): S (m, n) normal, Y (m, k) in [0, 1),
    w0 (n, p) and w1 (p, k) in [-1, 1), all in one dtype; rng draws more data of the same kind."""

    S: np.ndarray
    Y: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    rng: np.random.Generator


@st.composite
def seed_problems(draw, m=(1, 6), n=(1, 5), p=(1, 5), k=(1, 3), dtypes=(np.float64,)):
    """A SeedProblem with each size drawn in its (low, high) range, values from one drawn seed."""
    m, n, p, k = (draw(st.integers(*bounds)) for bounds in (m, n, p, k))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    S, Y = rng.normal(size=(m, n)).astype(dtype), rng.random((m, k)).astype(dtype)
    w0, w1 = rng.uniform(-1, 1, (n, p)).astype(dtype), rng.uniform(-1, 1, (p, k)).astype(dtype)
    return SeedProblem(S, Y, w0, w1, rng)


@st.composite
def binary_case(draw, low=-2.0, high=2.0, b_low=None, b_high=None, b_away_from_zero=0.0):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    a = draw(arrays(shapes.input_shapes[0], low, high))
    b = draw(
        arrays(
            shapes.input_shapes[1],
            b_low if b_low is not None else low,
            b_high if b_high is not None else high,
            b_away_from_zero,
        )
    )
    return (a, b), {}


@st.composite
def unary_case(draw, low=-2.0, high=2.0, away_from_zero=0.0):
    return (draw(arrays(draw(small_shapes()), low, high, away_from_zero)),), {}


@st.composite
def distinct_values(draw, shape):
    """An array whose elements are pairwise at least 0.1 apart (no ties for max)."""
    n = int(np.prod(shape))
    values = draw(st.permutations(list(range(n))))
    offset = draw(st.floats(-1, 1))
    return (np.array(values, dtype=np.float64) * 0.1 + offset).reshape(shape)


@st.composite
def axis_and_keepdims(draw, ndim):
    if ndim == 0:
        axis = None
    else:
        axis = draw(
            st.none()
            | st.integers(-ndim, ndim - 1)
            | st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)
        )
    return {"axis": axis, "keepdims": draw(st.booleans())}


@st.composite
def reduction_case(draw, distinct=False):
    shape = draw(small_shapes(min_dims=0))
    x = draw(distinct_values(shape)) if distinct else draw(arrays(shape))
    return (x,), draw(axis_and_keepdims(x.ndim))


@st.composite
def log_softmax_case(draw):
    shape = draw(small_shapes(min_dims=1))
    return (draw(arrays(shape)),), {"axis": draw(st.integers(0, len(shape) - 1))}


@st.composite
def pow_scalar_case(draw):
    (x,), _ = draw(unary_case(low=0.5, high=2.0))
    # the square (its own branch of the rule), 0 (where the rule's extra term matters), 1,
    # integers, fractions and negatives; ints and floats, as a Python program writes them
    exponent = draw(st.sampled_from([2, 0, 1, 3, -1, 2.0, 0.5, -1.5]) | st.floats(-3.0, 3.0))
    return (x,), {"exponent": exponent}


@st.composite
def matmul_case(draw):
    shapes = draw(
        hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=3, max_side=3)
    )
    return tuple(draw(arrays(s)) for s in shapes.input_shapes), {}


@st.composite
def maximum_case(draw):
    (a, b), params = draw(binary_case())
    assume(np.min(np.abs(a - b), initial=1.0) > 1e-3)  # ties are the kink: see test_kinks
    return (a, b), params


@st.composite
def broadcast_to_case(draw):
    shape = draw(small_shapes(min_dims=1))
    kept = shape[draw(st.integers(0, len(shape))) :]  # x may lack leading axes
    x_shape = tuple(draw(st.sampled_from([n, 1])) for n in kept)  # and have 1 for stretched ones
    return (draw(arrays(x_shape)),), {"shape": shape}


@st.composite
def reshape_case(draw):
    shape = draw(small_shapes())
    target = draw(st.sampled_from([(-1,), tuple(reversed(shape)), (1, *shape), shape]))
    return (draw(arrays(shape)),), {"shape": target}


@st.composite
def transpose_case(draw):
    shape = draw(small_shapes(min_dims=1))
    # negative axes too: recording wraps them (axis -1 is the last), so the rule never sees one
    order = st.permutations(list(range(len(shape))))
    signed = order.flatmap(lambda p: st.tuples(*(st.sampled_from([a, a - len(p)]) for a in p)))
    axes = draw(st.none() | signed)
    return (draw(arrays(shape)),), {"axes": axes}


@st.composite
def index(draw, shape):
    """A NumPy index into `shape`: basic slices and integers, or an integer array with repeats."""
    if draw(st.booleans()):
        return draw(hnp.basic_indices(shape, min_dims=0, allow_ellipsis=True, allow_newaxis=True))
    size = draw(st.integers(1, 6))
    return np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=size, max_size=size)))


@st.composite
def getitem_case(draw):
    shape = draw(small_shapes(min_dims=1))
    return (draw(arrays(shape)),), {"index": draw(index(shape))}


@st.composite
def scatter_add_case(draw):
    shape = draw(small_shapes(min_dims=1))
    idx = draw(index(shape))
    g_shape = np.zeros(shape)[idx].shape
    return (draw(arrays(g_shape)),), {"index": idx, "shape": shape}


@st.composite
def concatenate_case(draw):
    shape = draw(small_shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    xs = []
    for n in sizes:
        s = list(shape)
        s[axis] = n
        xs.append(draw(arrays(tuple(s))))
    return tuple(xs), {"axis": axis % len(shape)}


@st.composite
def where_case(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3))
    cond = draw(hnp.arrays(np.bool_, shapes.input_shapes[0]))
    return (cond, draw(arrays(shapes.input_shapes[1])), draw(arrays(shapes.input_shapes[2]))), {}


@st.composite
def clip_case(draw):
    (x,), _ = draw(unary_case())
    a_min, a_max = draw(st.sampled_from([(-1.0, 1.0), (None, 0.5), (-0.5, None), (0.0, 0.0)]))
    # the bounds are the kinks: see test_operations
    assume(all(np.min(np.abs(x - b), initial=1.0) > 1e-3 for b in (a_min, a_max) if b is not None))
    return (x,), {"a_min": a_min, "a_max": a_max}


@st.composite
def minimum_case(draw):
    (a, b), params = draw(maximum_case())
    return (a, b), params


@st.composite
def one_axis_case(draw, keepdims=True, allow_none=True):
    """x and an axis (or None) of it, and keepdims if the primitive takes it."""
    shape = draw(small_shapes(min_dims=0))
    x = draw(arrays(shape))
    axes = st.integers(-len(shape), len(shape) - 1) if shape else st.nothing()
    axis = draw((st.none() | axes) if allow_none else axes)
    params = {"axis": axis}
    if keepdims:
        params["keepdims"] = draw(st.booleans())
    return (x,), params


@st.composite
def pad_case(draw):
    shape = draw(small_shapes(min_dims=1))
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return (draw(arrays(shape)),), {"pad_width": widths, "constant_values": draw(floats(-1, 1))}


EINSUM_SUBSCRIPTS = {
    # subscripts: the shape of each operand, by letter (i=2, j=3, k=2)
    "ij,jk->ik": ("ij", "jk"),
    "ij,ij->i": ("ij", "ij"),
    "ij->": ("ij",),
    "ij->ji": ("ij",),
    "ii->i": ("ii",),
    "ii->": ("ii",),
    "iij->ji": ("iij",),
    "i,j->ij": ("i", "j"),
    "ij,j,k->ik": ("ij", "j", "k"),
    "ij,jk,kl->il": ("ij", "jk", "kl"),
}


@st.composite
def einsum_case(draw):
    subscripts = draw(st.sampled_from(sorted(EINSUM_SUBSCRIPTS)))
    size = {"i": 2, "j": 3, "k": 2, "l": 1}
    xs = tuple(draw(arrays(tuple(size[c] for c in name))) for name in EINSUM_SUBSCRIPTS[subscripts])
    return xs, {"subscripts": subscripts}


# name -> strategy of (inputs, params); test_primitive_cases_cover_the_table checks every
# primitive has one, so a new primitive is tested the day it lands.
PRIMITIVE_CASES = {
    "add": binary_case(),
    "sub": binary_case(),
    "mul": binary_case(),
    "div": binary_case(b_away_from_zero=0.5),
    "neg": unary_case(),
    "pow": binary_case(low=0.5, high=2.0, b_low=-2.0, b_high=2.0),
    "pow_scalar": pow_scalar_case(),
    "matmul": matmul_case(),
    "exp": unary_case(),
    "log": unary_case(low=0.2, high=3.0),
    "sqrt": unary_case(low=0.2, high=3.0),
    "sigmoid": unary_case(low=-6.0, high=6.0),
    "softplus": unary_case(low=-6.0, high=6.0),
    "tanh": unary_case(),
    "relu": unary_case(away_from_zero=0.01),
    "abs": unary_case(away_from_zero=0.01),
    "sign": unary_case(away_from_zero=0.01),
    "maximum": maximum_case(),
    "sum": reduction_case(),
    "max": reduction_case(distinct=True),
    "log_softmax": log_softmax_case(),
    "broadcast_to": broadcast_to_case(),
    "reshape": reshape_case(),
    "transpose": transpose_case(),
    "getitem": getitem_case(),
    "scatter_add": scatter_add_case(),
    "concatenate": concatenate_case(),
    "astype": unary_case().map(lambda case: (case[0], {"dtype": np.dtype(np.float64)})),
    "zeros_like": unary_case(),
    "copy": unary_case(),
    "sin": unary_case(),
    "cos": unary_case(),
    "tan": unary_case(low=-1.2, high=1.2),
    "arcsin": unary_case(low=-0.9, high=0.9),
    "arccos": unary_case(low=-0.9, high=0.9),
    "arctan": unary_case(),
    "sinh": unary_case(),
    "cosh": unary_case(),
    "log1p": unary_case(low=-0.8, high=3.0),
    "expm1": unary_case(),
    "log2": unary_case(low=0.2, high=3.0),
    "log10": unary_case(low=0.2, high=3.0),
    "exp2": unary_case(),
    "erf": unary_case(),
    "where": where_case(),
    "clip": clip_case(),
    "minimum": minimum_case(),
    "logsumexp": reduction_case(),
    "cumsum": one_axis_case(keepdims=False),
    "prod": one_axis_case(),
    "pad": pad_case(),
    "einsum": einsum_case(),
}


@st.composite
def image_case(draw, kernel=(1, 3), dilations=(1, 2), max_stride=2, pool=False):
    """Images x (N, C, H, W) and the params of a window of size `kernel` that fits in them:
    kernel_size, stride, padding (at most half the kernel for a pool, as PyTorch) and dilation
    (conv only), each a pair; H and W from the window's span minus the padding, up to 3 more."""
    size = tuple(draw(st.integers(*kernel)) for _ in range(2))
    stride = tuple(draw(st.integers(1, max_stride)) for _ in range(2))
    dilation = (1, 1) if pool else tuple(draw(st.integers(*dilations)) for _ in range(2))
    padding = tuple(draw(st.integers(0, k // 2 if pool else 2)) for k in size)
    span = [d * (k - 1) + 1 for d, k in zip(dilation, size, strict=True)]
    hw = tuple(
        max(1, s - 2 * p) + draw(st.integers(0, 3)) for s, p in zip(span, padding, strict=True)
    )
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + hw
    params = {"kernel_size": size, "stride": stride, "padding": padding}
    if not pool:
        params["dilation"] = dilation
    return shape, params


def conv_output_shape(x_shape, out_channels, params):
    (kh, kw), (sh, sw) = params["kernel_size"], params["stride"]
    (ph, pw), (dh, dw) = params["padding"], params.get("dilation", (1, 1))
    oh = (x_shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (x_shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (x_shape[0], out_channels, oh, ow)


@st.composite
def conv2d_case(draw, which="conv2d"):
    """conv2d(x, w), conv2d_input_grad(u, w) or conv2d_weight_grad(x, u), with their params."""
    shape, params = draw(image_case())
    kernel_size = params.pop("kernel_size")
    w = draw(arrays((draw(st.integers(1, 2)), shape[1]) + kernel_size))
    u_shape = conv_output_shape(shape, w.shape[0], {"kernel_size": kernel_size, **params})
    if which == "conv2d":
        return (draw(arrays(shape)), w), params
    if which == "input_grad":
        return (draw(arrays(u_shape)), w), {"input_size": shape[2:], **params}
    return (draw(arrays(shape)), draw(arrays(u_shape))), {"kernel_size": kernel_size, **params}


@st.composite
def pool_case(draw, which="avg_pool2d"):
    """A pool's inputs: x alone, u of the output's shape (a transpose) and/or x with distinct
    values (max pooling: no ties, which are its kink)."""
    shape, params = draw(image_case(max_stride=3, pool=True))
    u_shape = conv_output_shape(shape, shape[1], params)
    x = draw(distinct_values(shape)) if "max" in which else draw(arrays(shape))
    if which == "avg_pool2d_grad":
        return (draw(arrays(u_shape)),), {"input_size": shape[2:], **params}
    if which == "max_pool2d_scatter":
        return (draw(arrays(u_shape)), x), params
    if which == "max_pool2d_gather":
        return (draw(arrays(shape)), x), params
    return (x,), params


PRIMITIVE_CASES |= {
    "conv2d": conv2d_case(),
    "conv2d_input_grad": conv2d_case("input_grad"),
    "conv2d_weight_grad": conv2d_case("weight_grad"),
    "avg_pool2d": pool_case(),
    "avg_pool2d_grad": pool_case("avg_pool2d_grad"),
    "max_pool2d": pool_case("max_pool2d"),
    "max_pool2d_scatter": pool_case("max_pool2d_scatter"),
    "max_pool2d_gather": pool_case("max_pool2d_gather"),
}
