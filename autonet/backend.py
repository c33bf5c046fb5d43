"""Array backends: which namespace an array belongs to, and what the rules may ask of it.

A Tensor holds a NumPy ndarray (the default, and the fast path: the table's NumPy forwards are
called directly) or any array of the Python Array API standard: PyTorch tensors (CPU or CUDA),
CuPy arrays on a GPU, JAX arrays, `array_api_strict`'s reference arrays. For those, each forward
of the table is called with the inputs' namespace (`array_api_compat.array_namespace`), and asks
it only for the standard's functions, plus the few `extension`s below, each with a standard
composite to fall back on.

    namespace_of(x)   np for an ndarray; the Array API namespace of any other array
    to_numpy(x)       an ndarray of x's values (host memory), to print, draw or compare
    numpy_dtype(x)    x's dtype as a NumPy dtype: what Tensor.dtype reports on every backend
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

# The dtypes autonet works with, by the standard's names (NumPy's too).
DTYPE_NAMES = (
    "float64",
    "float32",
    "float16",
    "int64",
    "int32",
    "int16",
    "int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
    "bool",
)


def is_foreign(x: Any) -> bool:
    """True for an array of another library (not a NumPy ndarray, scalar, list or number)."""
    return is_foreign_kind(type(x))


# The libraries whose arrays array-api-compat gives a namespace to.
LIBRARIES = ("torch", "cupy", "jax", "jaxlib", "dask", "sparse", "ndonnx")


@functools.cache
def is_foreign_kind(kind: type) -> bool:
    """Arrays of `kind` belong to another library than NumPy (looked up once per kind)."""
    if issubclass(kind, (int, float, complex, np.ndarray, np.generic, list, tuple)):
        return False
    return hasattr(kind, "__array_namespace__") or kind.__module__.split(".")[0] in LIBRARIES


@functools.cache
def array_api_compat() -> ModuleType:
    """The array-api-compat package, imported when a first non-NumPy array is met."""
    try:
        return importlib.import_module("array_api_compat")
    except ImportError as exc:  # pragma: no cover - it is a dependency of autonet
        raise ImportError(
            "autonet: arrays other than NumPy's need the array-api-compat package: "
            "pip install array-api-compat"
        ) from exc


NAMESPACES: dict[type, Any] = {}  # array type -> its namespace (namespace_of)


def namespace_of(*arrays: Any, operation: str = "operation") -> Any:
    """The one Array API namespace of these arrays (numbers are ignored); np for ndarrays.

    Arrays of two libraries in one operation raise TypeError naming both, as arrays on two
    devices do: autonet never copies between them without being asked."""
    found = None
    for x in arrays:
        if isinstance(x, (int, float, bool)) or x is None:
            continue
        if type(x) is np.ndarray or isinstance(x, np.generic):
            xp = np
        else:
            xp = NAMESPACES.get(type(x))
            if xp is None:  # array_namespace costs microseconds: once per type
                xp = NAMESPACES[type(x)] = array_api_compat().array_namespace(x)
        if found is None:
            found = xp
        elif xp is not found:
            raise mixed_arrays(operation, arrays)
    return np if found is None else found


def standard_namespace(library: Any) -> Any:
    """A library's module as users import it (torch, cupy, dask.array) as its Array API
    namespace (array-api-compat's wrapper, whose asarray takes copy= and device=); np as itself."""
    if library is np:
        return np
    return namespace_of(library.asarray(np.zeros(1)))


def mixed_arrays(operation: str, arrays: Any) -> TypeError:
    kinds = ", ".join(
        f"{type(x).__module__}.{type(x).__name__} of shape {tuple(x.shape)}"
        for x in arrays
        if hasattr(x, "shape")
    )
    return TypeError(
        f"{operation}: the operands are arrays of different libraries ({kinds}); autonet does "
        "not move values between libraries (or devices) on its own: convert one first, "
        "an.tensor(xp.asarray(a)) into library xp or t.numpy() into NumPy, and model.to(xp) "
        "for a model's parameters"
    )


def to_numpy(x: Any) -> np.ndarray:
    """x's values as an ndarray in host memory (a GPU array is copied to the host)."""
    if isinstance(x, np.ndarray):
        return x
    compat = array_api_compat()
    if compat.is_cupy_array(x):
        return x.get()
    if compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, RuntimeError, ValueError):
        return np.from_dlpack(compat.to_device(x, "cpu"))


def host_bytes(array: Any) -> bytes:
    """The bytes of an array's values (of another library's, copied to the host first)."""
    return array.tobytes() if type(array) is np.ndarray else to_numpy(array).tobytes()


def numpy_dtype_of(dtype: Any, xp: Any) -> np.dtype:
    for name in DTYPE_NAMES:
        if getattr(xp, name, None) == dtype:
            return np.dtype(name)
    raise TypeError(
        f"autonet: arrays of dtype {dtype} ({library_of(xp)}) are not supported: autonet computes "
        f"in {', '.join(DTYPE_NAMES)}; convert the array first (to float32, say)"
    )


NUMPY_DTYPES: dict[tuple, np.dtype] = {}  # (array type, its dtype) -> NumPy's dtype


def numpy_dtype(x: Any) -> np.dtype:
    """The dtype of array x as a NumPy dtype (NumPy's own for an ndarray)."""
    dtype = x.dtype
    if isinstance(dtype, np.dtype):  # NumPy's, Dask's
        return dtype
    key = (type(x), dtype)  # the type first: dtypes of two libraries are never compared
    found = NUMPY_DTYPES.get(key)
    if found is None:
        found = NUMPY_DTYPES[key] = numpy_dtype_of(dtype, namespace_of(x))
    return found


def dtype_in(xp: Any, dtype: Any) -> Any:
    """A dtype (NumPy's, or a name) as namespace xp's own dtype object."""
    if xp is np:
        return np.dtype(dtype)
    name = np.dtype(dtype).name
    found = getattr(xp, name, None)
    if found is None:
        raise TypeError(f"autonet: the namespace {xp.__name__} has no dtype {name}")
    return found


# ---------------------------------------------------------------------------------------------
# Extensions: functions outside the standard that some namespaces have. A forward asks for one
# with extension(xp, name) and falls back on a standard composite when it gets None.


def library_of(xp: Any) -> str:
    """The array library behind namespace xp: "numpy", "torch", "cupy", "jax", ...; the
    compat wrappers (array_api_compat.torch) count as the library they wrap."""
    name = xp.__name__
    if name.startswith("array_api_compat."):
        name = name.removeprefix("array_api_compat.")
    return name.split(".")[0]


EXTENSIONS: dict[str, dict[str, Callable[[], Callable[..., Any]]]] = {
    # sigmoid in one pass (numpy: autonet's stable_sigmoid refines scipy's expit)
    "expit": {
        "torch": lambda: importlib.import_module("torch").sigmoid,
        "dask": lambda: importlib.import_module("scipy.special").expit,  # lazy, block by block
        "cupy": lambda: importlib.import_module("cupyx.scipy.special").expit,
        "jax": lambda: importlib.import_module("jax.nn").sigmoid,
    },
    "erf": {
        "numpy": lambda: importlib.import_module("scipy.special").erf,
        "dask": lambda: importlib.import_module("scipy.special").erf,
        "torch": lambda: importlib.import_module("torch.special").erf,
        "cupy": lambda: importlib.import_module("cupyx.scipy.special").erf,
        "jax": lambda: importlib.import_module("jax.scipy.special").erf,
    },
    "einsum": {
        "numpy": lambda: np.einsum,
        "torch": lambda: importlib.import_module("torch").einsum,
        "cupy": lambda: importlib.import_module("cupy").einsum,
        "jax": lambda: importlib.import_module("jax.numpy").einsum,
        "dask": lambda: importlib.import_module("dask.array").einsum,
    },
}


@functools.cache
def extension(xp: Any, name: str) -> Callable[..., Any] | None:
    """Namespace xp's function `name` from outside the standard (EXTENSIONS), or None."""
    found = EXTENSIONS[name].get(library_of(xp))
    return None if found is None else found()
