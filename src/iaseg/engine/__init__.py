"""The training and evaluation engine: typed configs (`config`), torchrun/DDP helpers
(`distributed`), what every forward pass shares (`step`: network inputs of a batch, autocast),
samplers (`samplers`), the one loop that runs a network over data (`evaluator`), the training
loop (`trainer`) and the two-checkpoint overlay of `iaseg compare` (`overlay`).

(Before this file existed, `engine` was a namespace package, which setuptools' package
discovery leaves out of wheels.)
"""
