"""Optimisers (SGD, Adam, AdamW, RMSprop) and learning-rate schedules (StepLR, CosineAnnealingLR,
ReduceLROnPlateau), with PyTorch's names, defaults, update equations and state_dict()s.

An optimiser holds a list of parameters (Tensors that require grad). After loss.backward() has
filled each parameter's .grad, step() moves the parameters; zero_grad() clears the gradients
before the next backward (they accumulate otherwise, as in PyTorch). Updates are written on the
parameters' arrays (.data) in place, under no_grad: an update is not part of any model's
computation, so it is never recorded, and the parameters stay the same Tensor objects (the
optimiser's list and the model's attributes keep pointing at them). A parameter whose .grad is
None (unused by the loss) is left alone, and its state (momentum, Adam's step count) too.

Saving and resuming. optimizer.state_dict() is PyTorch's structure,
    {"state": {index: {"momentum_buffer": array, ...}},
     "param_groups": [{"lr": ..., "momentum": ..., "params": [0, 1, ...]}]}
with index the parameter's position in the list given to the optimiser, and load_state_dict()
puts it back after checking it fits (same optimiser, same number of parameters, same shapes);
schedulers have state_dict()/load_state_dict() too. All of it goes through an.save/an.load:

    an.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "epoch": epoch}, "checkpoint.npz")

and training resumed from it continues bit for bit as if it had not stopped.

Where autonet differs from torch.optim: one parameter group per optimiser, whose hyperparameters
are attributes (optimizer.lr, optimizer.momentum, ...), there is no optimizer.param_groups to
edit; state_dict() returns copies (torch's shares the live buffers), its step counts are ints
(torch's are float tensors); no maximize, foreach, fused, capturable or differentiable options;
lr must be positive and SGD's momentum below 1; schedules take no last_epoch argument (resume
them with load_state_dict).
"""

from autonet.optim.optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from autonet.optim.schedulers import (
    CosineAnnealingLR,
    LRScheduler,
    ReduceLROnPlateau,
    Scheduler,
    StepLR,
)

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "LRScheduler",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "Scheduler",
    "StepLR",
]
