"""A reference interpreter for Core ML's ML programs (MIL), in numpy: a converted model's program
run where Apple's Core ML runtime does not exist (Linux), so that its conversion can be checked
there. Core ML itself runs only on macOS and no library executes a MIL program elsewhere
(coremltools' ops carry value inference for constant folding only, and not for conv, pooling or
the recurrent ops), hence this module.

The program is the one the saved .mlpackage holds, read back with coremltools' own milproto
loader (convcheck.mil.program); each operation is executed from coremltools' own definition of
it: the loaded op carries its inputs with the definition's defaults filled in, and the helpers
coremltools uses for its shape inference (padding, slicing, gather) compute the same here. The
ops themselves are in convcheck.mil.ops (elementwise, tensor) and convcheck.mil.nn (conv, pooling,
linear, normalisation, recurrent).

Precision: an operation computes in float32 (float64 for nothing) and its result is stored in the
dtype the program declares for its output, so an fp16 program computes in float16 as its casts
say (each op's result rounded to float16; inside one op, e.g. a convolution's sums, float32
accumulates, as Core ML's CPU kernels do). An op type the interpreter does not implement raises
Unsupported naming the op and the program, never a silent wrong answer.
"""
from __future__ import annotations

from convcheck.mil.interpreter import Interpreter, Unsupported, implemented, op_function
from convcheck.mil.program import load_program

__all__ = ["Interpreter", "Unsupported", "implemented", "load_program", "op_function"]
