"""Transforms: functions of functions and of graphs, as JAX's and torch.func's, built on the
backward pass (engine.backpropagate) and above Tensor.

    gradients(output, inputs)        d(output)/d(input) for each input (torch.autograd.grad)
    grad(f), value_and_grad(f)       x -> df/dx for a scalar f, composable (JAX's grad)
    vjp(f, *primals)                 f(x) and u -> J^T u, a reverse pass per call
    jvp(f, primals, tangents)        f(x) and J v, forward mode by transposing the VJP
    jacobian(f) = jacrev(f), jacfwd  the full Jacobian, a row or a column per pass
    hessian(f), hvp(f, x, v)         second derivatives: H = jacobian(grad(f)); H v without H
    vmap(f, in_axes, out_axes)       f of one example run once on a whole batch (batching rules)

J is the Jacobian of f at the primals. Each transform returns Tensors and records its own passes
when something outside may differentiate its results, so they compose with each other.
"""

from autonet.transforms.core import gradients
from autonet.transforms.forward import hessian, hvp, jacfwd, jvp
from autonet.transforms.reverse import grad, jacobian, jacrev, value_and_grad, vjp
from autonet.transforms.vmap import vmap

__all__ = [
    "grad",
    "gradients",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "value_and_grad",
    "vjp",
    "vmap",
]
