"""The MIL reference interpreter (convcheck.mil), op by op, against an independent reference:
PyTorch's kernels or numpy on small inputs, edge cases included (strides, dilation, groups,
same / same_lower / valid / custom padding, ceil-mode pooling, batch 1, sequence length 1, both
recurrent directions). Each program is built with coremltools' own MIL builder, so the op and its
defaults are coremltools' definition of it."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from coremltools.converters.mil import Builder as mb  # noqa: E402

from convcheck.mil import Interpreter, Unsupported  # noqa: E402

RNG = np.random.default_rng(0)
IOS = ct.target.iOS15


def run(build, *inputs, opset=IOS):
    """Build a one-function program of `build(*input vars)` and run it on `inputs`."""
    specs = [mb.TensorSpec(shape=x.shape, dtype=_mil_dtype(x)) for x in inputs]

    # The builder reads the function's own argument count: one or two named inputs.
    if len(inputs) == 1:
        def prog(x):
            return build(x)
    else:
        def prog(x, y):
            return build(x, y)
    prog = mb.program(input_specs=specs, opset_version=opset)(prog)

    it = Interpreter(prog, "test")
    out = it.run(dict(zip(it.inputs, inputs)))
    return [out[k] for k in it.outputs] if len(it.outputs) > 1 else out[it.outputs[0]]


def _mil_dtype(x):
    from coremltools.converters.mil.mil import types

    return {np.float32: types.fp32, np.float16: types.fp16, np.int32: types.int32}[x.dtype.type]


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def close(a, b, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               atol=atol, rtol=1e-5)


# ------------------------------------------------------------------ convolution


def _same_pads(size, k, s, d, lower=False):
    """TensorFlow's SAME rule, written out independently of coremltools' helper."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("stride,dilation,groups", [(1, 1, 1), (2, 1, 1), (1, 2, 1), (2, 2, 2),
                                                    (1, 1, 4)])
@pytest.mark.parametrize("pad_type", ["valid", "same", "same_lower", "custom"])
def test_conv2d(batch, stride, dilation, groups, pad_type):
    x, w, b = rand(batch, 4, 9, 8), rand(8, 4 // groups, 3, 2), rand(8)
    custom = [1, 2, 0, 1]
    got = run(lambda v: mb.conv(x=v, weight=w, bias=b, strides=[stride, stride],
                                dilations=[dilation, dilation], groups=groups,
                                pad_type=pad_type, pad=custom), x,
              opset=ct.target.iOS16 if pad_type == "same_lower" else IOS)  # iOS16 has it
    if pad_type == "custom":
        pads = [(custom[0], custom[1]), (custom[2], custom[3])]
    elif pad_type == "valid":
        pads = [(0, 0), (0, 0)]
    else:
        pads = [_same_pads(n, k, stride, dilation, pad_type == "same_lower")
                for n, k in zip(x.shape[2:], w.shape[2:])]
    xp = F.pad(torch.from_numpy(x), (*pads[1], *pads[0]))
    want = F.conv2d(xp, torch.from_numpy(w), torch.from_numpy(b), stride=stride,
                    dilation=dilation, groups=groups).numpy()
    assert got.shape == want.shape
    close(got, want, atol=1e-4)


def test_conv1d_without_bias():
    x, w = rand(2, 3, 11), rand(5, 3, 4)
    got = run(lambda v: mb.conv(x=v, weight=w, strides=[3], pad_type="valid"), x)
    close(got, F.conv1d(torch.from_numpy(x), torch.from_numpy(w), stride=3).numpy(), 1e-4)


# ------------------------------------------------------------------ pooling


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kernel,stride,pad", [(2, 2, 0), (3, 2, 1), (3, 3, 1)])
def test_max_pool(kernel, stride, pad, ceil_mode):
    x = rand(2, 3, 10, 7)
    got = run(lambda v: mb.max_pool(x=v, kernel_sizes=[kernel] * 2, strides=[stride] * 2,
                                    pad_type="custom", pad=[pad] * 4, ceil_mode=ceil_mode), x)
    want = F.max_pool2d(torch.from_numpy(x), kernel, stride, pad, ceil_mode=ceil_mode).numpy()
    assert got.shape == want.shape
    close(got, want)


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kernel,stride,pad", [(2, 2, 0), (3, 2, 1)])
def test_avg_pool(kernel, stride, pad, ceil_mode, exclude):
    x = rand(1, 2, 9, 6)
    got = run(lambda v: mb.avg_pool(x=v, kernel_sizes=[kernel] * 2, strides=[stride] * 2,
                                    pad_type="custom", pad=[pad] * 4, ceil_mode=ceil_mode,
                                    exclude_padding_from_average=exclude), x)
    want = F.avg_pool2d(torch.from_numpy(x), kernel, stride, pad, ceil_mode=ceil_mode,
                        count_include_pad=not exclude).numpy()
    assert got.shape == want.shape
    close(got, want)


def test_global_average_by_reduce_mean():
    x = rand(2, 5, 4, 4)
    close(run(lambda v: mb.reduce_mean(x=v, axes=[-2, -1], keep_dims=True), x),
          x.mean(axis=(2, 3), keepdims=True))


# ------------------------------------------------------------------ dense and normalisation


def test_linear_and_matmul():
    x, w, b, y = rand(3, 6), rand(4, 6), rand(4), rand(3, 6)
    close(run(lambda v: mb.linear(x=v, weight=w, bias=b), x), x @ w.T + b)
    close(run(lambda v: mb.linear(x=v, weight=w), x), x @ w.T)
    close(run(lambda u, v: mb.matmul(x=u, y=v, transpose_y=True), x, y), x @ y.T)
    close(run(lambda u, v: mb.matmul(x=u, y=v, transpose_x=True), x, y), x.T @ y)


def test_batch_norm_softmax_and_activations():
    x = rand(2, 3, 4, 4)
    mean, var, gamma, beta = rand(3), np.abs(rand(3)) + 0.1, rand(3), rand(3)
    got = run(lambda v: mb.batch_norm(x=v, mean=mean, variance=var, gamma=gamma, beta=beta,
                                      epsilon=1e-3), x)
    want = F.batch_norm(*map(torch.from_numpy, (x, mean, var, gamma, beta)), eps=1e-3).numpy()
    close(got, want)
    t = torch.from_numpy(x)
    close(run(lambda v: mb.softmax(x=v, axis=1), x), torch.softmax(t, 1).numpy())
    close(run(lambda v: mb.sigmoid(x=v), x), torch.sigmoid(t).numpy())
    close(run(lambda v: mb.tanh(x=v), x), torch.tanh(t).numpy())
    close(run(lambda v: mb.relu(x=v), x), torch.relu(t).numpy())
    close(run(lambda v: mb.gelu(x=v), x), F.gelu(t).numpy())
    close(run(lambda v: mb.gelu(x=v, mode="TANH_APPROXIMATION"), x),
          F.gelu(t, approximate="tanh").numpy())
    close(run(lambda v: mb.leaky_relu(x=v, alpha=0.2), x), F.leaky_relu(t, 0.2).numpy())
    close(run(lambda v: mb.layer_norm(x=v, axes=[-1], epsilon=1e-5), x),
          F.layer_norm(t, (4,)).numpy())


# ------------------------------------------------------------------ recurrent


def _torch_lstm(x, hidden, bidirectional=False):
    lstm = torch.nn.LSTM(x.shape[-1], hidden, bidirectional=bidirectional)
    with torch.no_grad():
        out, (h, c) = lstm(torch.from_numpy(x))
    return lstm, out.numpy(), h.numpy(), c.numpy()


def _ifog(w):
    """PyTorch's gate order [i, f, g, o] -> MIL's [i, f, o, g] (recurrent.py's lstm)."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _lstm_weights(lstm, suffix=""):
    get = lambda n: getattr(lstm, n + suffix).detach().numpy()  # noqa: E731
    return (_ifog(get("weight_ih_l0")), _ifog(get("weight_hh_l0")),
            _ifog(get("bias_ih_l0") + get("bias_hh_l0")))


@pytest.mark.parametrize("steps,batch", [(1, 1), (5, 3)])
@pytest.mark.parametrize("sequence", [False, True])
def test_lstm_against_torch(steps, batch, sequence):
    x, hidden = rand(steps, batch, 4), 3
    lstm, out, h, c = _torch_lstm(x, hidden)
    w_ih, w_hh, b = _lstm_weights(lstm)
    zeros = np.zeros((batch, hidden), np.float32)
    got_out, got_h, got_c = run(lambda v: mb.lstm(
        x=v, initial_h=zeros, initial_c=zeros, weight_ih=w_ih, weight_hh=w_hh, bias=b,
        output_sequence=sequence), x)
    close(got_out, out if sequence else out[-1:])
    close(got_h, h[0])
    close(got_c, c[0])


def test_bidirectional_and_reverse_lstm_against_torch():
    x, hidden = rand(4, 2, 3), 5
    lstm, out, h, c = _torch_lstm(x, hidden, bidirectional=True)
    fw, bw = _lstm_weights(lstm), _lstm_weights(lstm, "_reverse")
    zeros = np.zeros((2, 2 * hidden), np.float32)
    got_out, got_h, got_c = run(lambda v: mb.lstm(
        x=v, initial_h=zeros, initial_c=zeros, weight_ih=fw[0], weight_hh=fw[1], bias=fw[2],
        weight_ih_back=bw[0], weight_hh_back=bw[1], bias_back=bw[2],
        direction="bidirectional", output_sequence=True), x)
    close(got_out, out)
    close(got_h, np.concatenate([h[0], h[1]], axis=-1))
    # reverse alone: the backward half of the bidirectional LSTM
    got_out, got_h, _ = run(lambda v: mb.lstm(
        x=v, initial_h=zeros[:, :hidden], initial_c=zeros[:, :hidden], weight_ih=bw[0],
        weight_hh=bw[1], bias=bw[2], direction="reverse", output_sequence=True), x)
    close(got_out, out[:, :, hidden:])
    close(got_h, h[1])


@pytest.mark.parametrize("steps", [1, 6])
def test_gru_against_torch(steps):
    """MIL's gru has one bias outside the reset gate; a PyTorch GRU with b_hn = 0 is the same
    function (gate order [r, z, n] -> MIL [r, o, z])."""
    x, hidden = rand(steps, 2, 3), 4
    gru = torch.nn.GRU(3, hidden)
    with torch.no_grad():
        gru.bias_hh_l0[2 * hidden:] = 0
        out, h = gru(torch.from_numpy(x))

    def order(w):
        r, z, n = np.split(w, 3, axis=0)
        return np.concatenate([r, n, z], axis=0)
    w_ih, w_hh = order(gru.weight_ih_l0.detach().numpy()), order(gru.weight_hh_l0.detach().numpy())
    b = order((gru.bias_ih_l0 + gru.bias_hh_l0).detach().numpy())
    got_out, got_h = run(lambda v: mb.gru(x=v, initial_h=np.zeros((2, hidden), np.float32),
                                          weight_ih=w_ih, weight_hh=w_hh, bias=b,
                                          output_sequence=True), x)
    close(got_out, out.numpy())
    close(got_h, h.numpy()[0])


# ------------------------------------------------------------------ tensor operations


def test_slicing_gather_scatter_and_layout():
    x = rand(3, 4, 5)
    close(run(lambda v: mb.slice_by_index(x=v, begin=[0, 1, 0], end=[3, 4, 5], stride=[2, 1, -1],
                                          begin_mask=[True, False, True],
                                          end_mask=[True, False, True],
                                          squeeze_mask=[False, False, False]), x),
          x[::2, 1:4, ::-1])
    close(run(lambda v: mb.slice_by_index(x=v, begin=[1, 0, 0], end=[2, 4, 5],
                                          squeeze_mask=[True, False, False]), x), x[1])
    close(run(lambda v: mb.slice_by_size(x=v, begin=[1, 0, 2], size=[-1, 2, 3]), x),
          x[1:, 0:2, 2:5])
    idx = np.array([2, 0, 2], np.int32)
    close(run(lambda v: mb.gather(x=v, indices=idx, axis=1), x), np.take(x, idx, axis=1))
    upd = rand(3, 2, 5)
    for mode, fn in (("update", None), ("add", np.add)):
        want = x.copy()
        for i, j in enumerate([3, 1]):
            want[:, j] = upd[:, i] if fn is None else fn(want[:, j], upd[:, i])
        close(run(lambda v: mb.scatter(data=v, indices=np.array([3, 1], np.int32), updates=upd,
                                       axis=1, mode=mode), x), want)
    close(run(lambda v: mb.transpose(x=v, perm=[2, 0, 1]), x), x.transpose(2, 0, 1))
    # float16 data: each updated element computed in float32 and rounded once, the others kept
    # (the whole tensor is not cast there and back: a recurrent loop scatters every step)
    h, uh = x.astype(np.float16), upd.astype(np.float16)
    got = run(lambda v: mb.scatter(data=v, indices=np.array([3, 1], np.int32), updates=uh,
                                   axis=1, mode="add"), h, opset=ct.target.iOS16)
    want = h.astype(np.float32)
    for i, j in enumerate([3, 1]):
        want[:, j] += uh[:, i].astype(np.float32)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want.astype(np.float16))
    close(run(lambda v: mb.reshape(x=v, shape=[3, -1]), x), x.reshape(3, -1))
    close(run(lambda v: mb.expand_dims(x=v, axes=[0, -1]), x), x[None, ..., None])
    close(run(lambda v: mb.squeeze(x=mb.expand_dims(x=v, axes=[1]), axes=[1]), x), x)
    close(run(lambda v: mb.concat(values=[v, v], axis=-1), x), np.concatenate([x, x], -1))
    a, b = run(lambda v: mb.split(x=v, split_sizes=[1, 3], axis=1), x)
    close(a, x[:, :1])
    close(b, x[:, 1:])
    for mode, torch_mode in (("constant", "constant"), ("reflect", "reflect"),
                             ("replicate", "replicate")):
        close(run(lambda v: mb.pad(x=v, pad=[1, 2, 2, 1], mode=mode), x),
              F.pad(torch.from_numpy(x)[None], (2, 1, 1, 2), mode=torch_mode).numpy()[0])


def test_while_loop_runs_its_body_until_its_condition_fails():
    x = rand(2, 3)

    def build(v):
        def cond(i, acc):
            return mb.less(x=i, y=np.float32(4))

        def body(i, acc):
            return mb.add(x=i, y=np.float32(1)), mb.add(x=acc, y=v)
        _, acc = mb.while_loop(_cond=cond, _body=body,
                               loop_vars=(np.float32(0), np.zeros((2, 3), np.float32)))
        return acc
    close(run(build, x), 4 * x)


def test_a_loops_invariant_ops_run_once_per_loop_and_give_the_same_values():
    """The body's cast of the outer input and what follows from it alone are computed on the
    first iteration and reused (an fp16 recurrent program casts its whole input sequence
    every step); what reads the loop's own variables runs every time."""
    x = rand(2, 3)

    def build(v):
        def cond(i, acc):
            return mb.less(x=i, y=np.float32(4))

        def body(i, acc):
            outer = mb.mul(x=mb.cast(x=v, dtype="fp16"), y=np.float16(2))  # invariant
            step = mb.cast(x=mb.mul(x=outer, y=mb.cast(x=i, dtype="fp16")), dtype="fp32")
            return mb.add(x=i, y=np.float32(1)), mb.add(x=acc, y=step)
        _, acc = mb.while_loop(_cond=cond, _body=body,
                               loop_vars=(np.float32(0), np.zeros((2, 3), np.float32)))
        return acc

    prog = mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=IOS)(build)
    it = Interpreter(prog, "test")
    runs = Counter()
    ops = dict(it.ops)
    for name in ("cast", "mul"):
        it.ops[name] = lambda a, fn=ops[name], name=name: runs.update([a.op.name]) or fn(a)
    got = it.run({next(iter(it.inputs)): x})[it.outputs[0]]
    body = next(op for op in prog.functions["main"].operations
                if op.op_type == "while_loop").blocks[1]
    invariant = {op.name for op in body.operations if id(op) in it._invariant(body)}
    assert len(invariant) == 2 and {runs[n] for n in invariant} == {1}, (invariant, runs)
    assert max(runs.values()) == 4  # the steps' own ops: once per iteration
    want = sum(t * (x.astype(np.float16) * np.float16(2)).astype(np.float16) for t in range(4))
    close(got, want.astype(np.float32), atol=1e-2)
    it.ops.update(ops)
    without = Interpreter(prog, "test")
    without._invariant = lambda block: frozenset()
    np.testing.assert_array_equal(got, without.run({next(iter(it.inputs)): x})[it.outputs[0]])


def test_an_fp16_loops_float32_sequence_is_not_converted_every_step(monkeypatch):
    """coremltools' fp16 recurrent programs keep the output sequence as a float32 loop
    variable, cast it to float16, scatter the step into it and cast it back, every step. The
    cast back gives the float16 array it came from (float16 -> float32 -> float16 is exact), so
    the sequence is converted to float32 once, when the output is read, not twice a step; the
    values are the same."""
    from convcheck.mil import interpreter

    x = rand(6, 2, 3)

    def build(v):
        def cond(i, seq):
            return mb.less(x=i, y=np.int32(6))

        def body(i, seq):
            s16 = mb.cast(x=seq, dtype="fp16")
            step = mb.gather(x=mb.cast(x=v, dtype="fp16"), indices=i, axis=0)
            new = mb.scatter(data=s16, indices=i, updates=mb.mul(x=step, y=np.float16(3)),
                             axis=0, mode="update")
            return mb.add(x=i, y=np.int32(1)), mb.cast(x=new, dtype="fp32")
        _, seq = mb.while_loop(_cond=cond, _body=body,
                               loop_vars=(np.zeros(1, np.int32), np.zeros((6, 2, 3), np.float32)))
        return seq

    converted = Counter()
    wide = interpreter.Widened.wide
    monkeypatch.setattr(interpreter.Widened, "wide",
                        lambda self: converted.update([self.narrow.shape]) or wide(self))
    got = run(build, x)
    want = (x.astype(np.float16) * np.float16(3)).astype(np.float16).astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert converted == {(6, 2, 3): 1}, converted  # once, for the output; never in the loop


# ------------------------------------------------------------------ precision and refusals


def test_an_fp16_program_computes_in_float16():
    """Each op's result is stored in the dtype it declares: between the casts, float16."""
    x, w = rand(2, 8), rand(8, 8)

    def build(v):
        h = mb.cast(x=v, dtype="fp16")
        h = mb.linear(x=h, weight=w.astype(np.float16))
        h = mb.relu(x=h)
        return mb.cast(x=h, dtype="fp32")
    got = run(build, x)
    x16, w16 = x.astype(np.float16).astype(np.float32), w.astype(np.float16).astype(np.float32)
    want = np.maximum(x16 @ w16.T, 0).astype(np.float16).astype(np.float32)
    close(got, want, atol=0)
    assert np.abs(got - np.maximum(x @ w.T, 0)).max() > 1e-4  # it did not compute in fp32


def test_an_op_it_does_not_implement_is_refused_naming_it():
    x = rand(1, 2, 4, 4)
    with pytest.raises(Unsupported, match=r"test: the MIL interpreter does not implement "
                                          r"conv_transpose \(x1\)"):
        run(lambda v: mb.conv_transpose(x=v, weight=rand(2, 3, 2, 2)), x)


def test_an_input_it_would_have_to_guess_is_refused():
    x, hidden = rand(2, 1, 3), 2
    w_ih, w_hh = rand(4 * hidden, 3), rand(4 * hidden, hidden)
    zeros = np.zeros((1, hidden), np.float32)
    with pytest.raises(Unsupported, match="lstm .*: clip"):
        run(lambda v: mb.lstm(x=v, initial_h=zeros, initial_c=zeros, weight_ih=w_ih,
                              weight_hh=w_hh, clip=np.float32(1.0)), x)
