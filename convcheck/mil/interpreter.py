"""Running a MIL function: the operations in program order, each result stored in the dtype its
output declares; nested blocks (while_loop, cond) run over the enclosing values."""
from __future__ import annotations

from collections import ChainMap, Counter

import numpy as np


class Unsupported(Exception):
    """The program holds an operation the interpreter does not implement (or implements only in
    part: an input it would have to guess the meaning of)."""


def _ops() -> dict:
    from convcheck.mil import nn, ops  # noqa: F401 -- nn registers its ops in ops.OPS

    return ops.OPS


def op_function(op_type: str):
    """The function that runs one op type: fn(args) with args(name, default) giving its inputs
    and args.unsupported(why) refusing (the neuralnetwork interpreter runs its convolution and
    pooling layers on the same code)."""
    return _ops()[op_type]


def implemented() -> tuple[str, ...]:
    """The op types the interpreter runs (besides const, while_loop and cond)."""
    return tuple(sorted(_ops()))


def np_dtype(var):
    """The numpy dtype of a MIL tensor or scalar var's elements (None for str and the like)."""
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    try:
        return np.dtype(types.nptype_from_builtin(dtype))
    except (TypeError, KeyError):
        return None


class Widened:
    """A float16 array cast to float32 (or float64), converted only when an op other than a
    cast reads it. Why: coremltools' fp16 recurrent programs keep the output sequence as a
    float32 loop variable and, every step, cast it to float16, scatter the step into it and
    cast it back: two conversions of the whole sequence per step, three quarters of an fp16
    PyTorch GRU's time here. float16 -> float32 -> float16 is exact, so the cast back gives
    the float16 array it came from, and the sequence is never converted inside the loop."""

    __slots__ = ("narrow", "dtype", "_wide")

    def __init__(self, narrow: np.ndarray, dtype):
        self.narrow, self.dtype, self._wide = narrow, np.dtype(dtype), None

    def wide(self) -> np.ndarray:
        if self._wide is None:
            self._wide = self.narrow.astype(self.dtype)
        return self._wide


# float16 holds exactly in these: a value cast to one and back is the value it was
_EXACTLY_WIDER = {np.dtype(np.float32), np.dtype(np.float64)}


def _stored(value, dtype):
    """`value` as the env holds an op's output declared `dtype` (None: not an array type): a
    float16 array declared float32 or float64 (a cast's) is Widened, converted when read."""
    if isinstance(value, np.ndarray) and value.dtype == np.float16 and dtype in _EXACTLY_WIDER:
        return Widened(value, dtype)
    if isinstance(value, Widened):
        if value.narrow.dtype == dtype:  # cast back to where it came from: exact
            return value.narrow
        if dtype in _EXACTLY_WIDER:
            return value if value.dtype == dtype else Widened(value.narrow, dtype)
        value = value.wide()
    value = np.asarray(value)
    return value.astype(dtype, copy=False) if dtype is not None else value


class Args:
    """One operation's inputs, by the names of coremltools' definition of the op; an input the
    program leaves out has the definition's default (the loaded op carries it)."""

    def __init__(self, op, env):
        self.op, self._env = op, env

    def __call__(self, name: str, default=None):
        var = getattr(self.op, name, None) if name in self.op.input_spec.input_types else None
        if var is None:
            return default
        if isinstance(var, (list, tuple)):
            return [self._value(v) for v in var]
        return self._value(var)

    def _value(self, var):
        value = self.raw(var)
        return value.wide() if isinstance(value, Widened) else value

    def raw(self, var):
        """An input's value as the interpreter holds it: a Widened one is not converted (the
        cast op passes it on; every other op reads the converted array)."""
        if isinstance(var, str):
            var = getattr(self.op, var)
        if var.name in self._env:
            return self._env[var.name]
        if var.val is not None:
            return var.val
        raise KeyError(f"{self.op.op_type} {self.op.name!r}: input {var.name!r} has no value")

    def unsupported(self, why: str):
        raise Unsupported(f"{self.op.op_type} {self.op.name!r}: {why}")


class Interpreter:
    """A MIL program's function, ready to run on numpy inputs.

    Every op type in it (nested blocks included) is checked at construction: one that is not
    implemented raises Unsupported, naming them all, before anything runs."""

    def __init__(self, program, name: str = "", function: str = "main"):
        self.name = name
        self.fn = program.functions[function]
        self.ops = _ops()
        missing = Counter(op.op_type for op in self._walk(self.fn)
                          if op.op_type not in self.ops and op.op_type not in _CONTROL
                          and not _compressed(op))
        if missing:
            raise Unsupported(
                f"{name or 'the program'}: the MIL interpreter does not implement "
                + ", ".join(f"{t} (x{n})" for t, n in sorted(missing.items()))
                + f"; it implements {', '.join(implemented())}")
        self.inputs = {k: np_dtype(v) for k, v in self.fn.inputs.items()}
        self.outputs = [v.name for v in self.fn.outputs]
        self._decompressed: dict[int, tuple] = {}  # a constexpr op (its id) -> its values
        self._invariants: dict[int, frozenset] = {}  # a loop's block (its id) -> see _invariant

    @classmethod
    def load(cls, path, name: str = "") -> "Interpreter":
        from convcheck.mil.program import load_program

        return cls(load_program(path), name or str(path))

    def _walk(self, block):
        for op in block.operations:
            yield op
            for b in op.blocks:
                yield from self._walk(b)

    def run(self, feeds: dict) -> dict:
        """The function's outputs (name -> array) on `feeds` (input name -> array)."""
        unknown = set(feeds) - set(self.inputs)
        if unknown or set(self.inputs) - set(feeds):
            raise ValueError(f"{self.name}: inputs {sorted(feeds)} given, the program takes "
                             f"{sorted(self.inputs)}")
        env = {k: np.asarray(v, dtype=self.inputs[k]) for k, v in feeds.items()}
        self._block(self.fn, env)
        return {k: env[k].wide() if isinstance(env[k], Widened) else env[k]
                for k in self.outputs}

    def _block(self, block, env, hoisted: dict | None = None) -> None:
        """Run `block`'s ops over `env`. hoisted: a loop's block, run once per iteration: the
        values of its loop-invariant ops (_invariant), computed on the first iteration and
        reused on the others."""
        invariant = self._invariant(block) if hoisted is not None else frozenset()
        for op in block.operations:
            if id(op) in invariant and id(op) in hoisted:
                for var, value in zip(op.outputs, hoisted[id(op)]):
                    env[var.name] = value
                continue
            if op.op_type == "const":
                env[op.outputs[0].name] = op.outputs[0].val
                continue
            if _compressed(op):
                # A compressed weight (palettized, quantized, sparse): decompressed by the op's
                # own definition, as coremltools does when it folds one; once per interpreter,
                # not per run (a property test runs a program dozens of times on small
                # batches, and a ResNet-18's weights take longer to decompress than to use).
                values = self._decompressed.get(id(op))  # the program keeps its ops
                if values is None:
                    values = op.materialized_val_inference()
                    values = tuple(np.asarray(v) for v in (
                        values if isinstance(values, tuple) else (values,)))
                    for v in values:
                        v.setflags(write=False)  # shared by every run from now on
                    self._decompressed[id(op)] = values
                for var, value in zip(op.outputs, values):
                    env[var.name] = value
                continue
            try:
                if op.op_type == "while_loop":
                    results = self._while(op, env)
                elif op.op_type == "cond":
                    results = self._cond(op, env)
                else:
                    results = self.ops[op.op_type](Args(op, env))
            except Unsupported:
                raise
            except Exception as e:  # said with the op it happened in
                raise RuntimeError(f"{self.name}: {op.op_type} {op.name!r}: "
                                   f"{type(e).__name__}: {e}") from e
            if not isinstance(results, (list, tuple)):
                results = (results,)
            for var, value in zip(op.outputs, results):
                env[var.name] = _stored(value, np_dtype(var))
            if id(op) in invariant:
                hoisted[id(op)] = tuple(env[var.name] for var in op.outputs)

    def _invariant(self, block) -> frozenset:
        """The ids of a loop block's ops that compute the same values on every iteration of
        one run of the loop: no nested block, and every input from outside the block (the
        enclosing values do not change while it loops), a constant, or another such op's.
        Computed once per block. Why: coremltools' fp16 recurrent programs cast the whole
        input sequence inside the loop, every step (an fp16 GRU: 200 casts of a 64 x 200 x
        128 sequence per 64 reviews); every op here is a pure function of its inputs, so
        computing it once per loop run gives the same values."""
        found = self._invariants.get(id(block))
        if found is None:
            inside = {v.name for v in block.inputs}
            ids = set()
            for op in block.operations:
                if op.op_type == "const" or _compressed(op):
                    continue  # the same values on every run already
                names = {v.name for v in _input_vars(op)}
                if (not op.blocks and not op.op_type.startswith("random")
                        and not names & inside):
                    ids.add(id(op))
                else:
                    inside.update(v.name for v in op.outputs)
            found = self._invariants[id(block)] = frozenset(ids)
        return found

    def _nested(self, block, env, values, hoisted: dict | None = None) -> list:
        """Run a nested block with its inputs bound to `values`; its outputs' values."""
        local = ChainMap({v.name: val for v, val in zip(block.inputs, values)}, env)
        self._block(block, local, hoisted)
        return [local[v.name] if v.name in local else v.val for v in block.outputs]

    def _while(self, op, env) -> list:
        cond, body = op.blocks
        values = Args(op, env)("loop_vars")
        hoisted_cond, hoisted_body = {}, {}  # for this run of the loop (see _invariant)
        while bool(np.asarray(self._nested(cond, env, values, hoisted_cond)[0])):
            values = self._nested(body, env, values, hoisted_body)
        return values

    def _cond(self, op, env) -> list:
        pred = bool(np.asarray(Args(op, env)("pred")))
        return self._nested(op.blocks[0] if pred else op.blocks[1], env, [])


_CONTROL = {"const", "while_loop", "cond"}


def _input_vars(op):
    """The vars an op reads (a tuple input's each)."""
    for v in op.inputs.values():
        if isinstance(v, (list, tuple)):
            yield from v
        else:
            yield v


def _compressed(op) -> bool:
    """A constexpr_* op (compressed weights, iOS16 on): coremltools' definition materializes it."""
    return op.op_type.startswith("constexpr_") and hasattr(op, "materialized_val_inference")
