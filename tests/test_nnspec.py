"""The neuralnetwork reference interpreter (convcheck.nnspec), layer by layer, against an
independent reference: PyTorch's kernels or numpy on small inputs, edge cases included (strides,
dilation, groups, valid / same padding of both asymmetries, the last-pixel pooling, global
pooling, batch 1, sequence length 1, the loop layer). Each model is built with coremltools' own
NeuralNetworkBuilder, so the layer and its fields are coremltools' encoding of it; the zoo's ten
neuralnetwork conversions are checked whole by the conformance suite on coreml-reference."""
from __future__ import annotations

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from coremltools.models import datatypes  # noqa: E402
from coremltools.models.neural_network import NeuralNetworkBuilder  # noqa: E402

from convcheck.nnspec import Interpreter, Unsupported  # noqa: E402

RNG = np.random.default_rng(0)


def builder(*outputs, **inputs) -> NeuralNetworkBuilder:
    """A model taking `inputs` (name=shape), giving `outputs` ("y" by default); shapes taken as
    they are (ND)."""
    return NeuralNetworkBuilder([(n, datatypes.Array(*s)) for n, s in inputs.items()],
                                [(o, None) for o in outputs or ("y",)],
                                disable_rank5_shape_mapping=True)


def run(b: NeuralNetworkBuilder, **feeds) -> np.ndarray:
    return Interpreter(b.spec, "test").run(feeds)["y"]


def run_all(b: NeuralNetworkBuilder, **feeds) -> dict:
    return Interpreter(b.spec, "test").run(feeds)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def close(a, b, atol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               atol=atol, rtol=1e-5)


def t(x):
    return torch.from_numpy(np.ascontiguousarray(x))


# ------------------------------------------------------------------ convolution and pooling


@pytest.mark.parametrize("batch,stride,dilation,groups,padding", [
    (1, 1, 1, 1, "valid"), (3, 2, 1, 1, (1, 2, 0, 1)), (2, 1, 2, 2, "same"),
    (1, 2, 1, 4, "same"), (2, 2, 1, 1, "same-top-left"), (1, 3, 1, 1, (2, 2, 2, 2)),
])
def test_convolution(batch, stride, dilation, groups, padding):
    cin, cout, k = 4, 8, 3
    x, w, bias = rand(batch, cin, 9, 8), rand(cout, cin // groups, k, k), rand(cout)
    b = builder(x=x.shape)
    custom = padding if isinstance(padding, tuple) else (0, 0, 0, 0)
    mode = "same" if str(padding).startswith("same") else "valid"
    b.add_convolution("conv", cin // groups, cout, k, k, stride, stride, mode, groups,
                      w.transpose(2, 3, 1, 0), bias, True, input_name="x", output_name="y",
                      dilation_factors=[dilation, dilation], padding_top=custom[0],
                      padding_bottom=custom[1], padding_left=custom[2], padding_right=custom[3],
                      same_padding_asymmetry_mode="TOP_LEFT_HEAVY"
                      if padding == "same-top-left" else "BOTTOM_RIGHT_HEAVY")
    if mode == "same":
        pads = []
        for size in x.shape[2:]:
            out = -(-size // stride)
            total = max(0, (out - 1) * stride + (k - 1) * dilation + 1 - size)
            lo = total - total // 2 if padding == "same-top-left" else total // 2
            pads.append((lo, total - lo))
        custom = (*pads[0], *pads[1])
    xp = np.pad(x, [(0, 0), (0, 0), custom[:2], custom[2:]])
    want = F.conv2d(t(xp), t(w), t(bias), stride=stride, dilation=dilation, groups=groups)
    close(run(b, x=x), want.numpy(), atol=1e-4)


@pytest.mark.parametrize("kind,padding,exclude", [
    ("MAX", "VALID", True), ("AVERAGE", "VALID", True), ("AVERAGE", "VALID-padded", False),
    ("AVERAGE", "VALID-padded", True), ("MAX", "INCLUDE_LAST_PIXEL", True),
    ("AVERAGE", "INCLUDE_LAST_PIXEL", False), ("MAX", "SAME", True),
])
def test_pooling(kind, padding, exclude):
    x = rand(2, 3, 7, 6)
    b = builder(x=x.shape)
    pad = 1 if padding != "VALID" else 0
    b.add_pooling("pool", 3, 3, 2, 2, kind, padding.split("-")[0], "x", "y",
                  exclude_pad_area=exclude, padding_top=pad, padding_bottom=pad,
                  padding_left=pad, padding_right=pad)
    if padding == "SAME":
        # 7 -> 4 rows (2 padded: 0 before, 1 after... total 2: 1 and 1); 6 -> 3 columns (1 after)
        xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (0, 1)], constant_values=-np.inf)
        want = F.max_pool2d(t(xp), 3, 2)
    elif kind == "MAX":
        want = F.max_pool2d(t(x), 3, 2, padding=pad, ceil_mode=padding == "INCLUDE_LAST_PIXEL")
    else:
        want = F.avg_pool2d(t(x), 3, 2, padding=pad, ceil_mode=padding == "INCLUDE_LAST_PIXEL",
                            count_include_pad=not exclude)
    close(run(b, x=x), want.numpy())


@pytest.mark.parametrize("kind", ["MAX", "AVERAGE"])
def test_global_pooling_on_a_rank_5_blob(kind):
    x = rand(1, 2, 3, 4, 5)  # [Seq, Batch, C, H, W]
    b = builder(x=x.shape)
    b.add_pooling("pool", 0, 0, 0, 0, kind, "VALID", "x", "y", is_global=True)
    reduce = np.max if kind == "MAX" else np.mean
    close(run(b, x=x), reduce(x, axis=(-2, -1), keepdims=True))


@pytest.mark.parametrize("kind", ["constant", "reflection", "replication"])
def test_padding(kind):
    x = rand(1, 2, 4, 5)
    b = builder(x=x.shape)
    b.add_padding("pad", left=1, right=2, top=2, bottom=0, value=1.5, input_name="x",
                  output_name="y", padding_type=kind)
    mode = {"constant": "constant", "reflection": "reflect", "replication": "edge"}[kind]
    extra = {"constant_values": 1.5} if kind == "constant" else {}
    close(run(b, x=x), np.pad(x, [(0, 0), (0, 0), (2, 0), (1, 2)], mode=mode, **extra))


# ------------------------------------------------------------------ dense and recurrent


def test_inner_product_on_rank_2_and_on_a_c_1_1_blob():
    w, bias = rand(3, 5), rand(3)
    for shape in [(4, 5), (2, 4, 5, 1, 1)]:
        x = rand(*shape)
        b = builder(x=x.shape)
        b.add_inner_product("fc", w, bias, 5, 3, True, "x", "y")
        if len(shape) == 5:
            want = (x[..., 0, 0] @ w.T + bias)[..., None, None]
        else:
            want = x @ w.T + bias
        close(run(b, x=x), want)


def test_batched_matmul_with_weights_and_with_two_inputs():
    a, w, bias = rand(2, 3, 4), rand(4, 6), rand(6)
    b = builder(a=a.shape)
    b.add_batched_mat_mul("mm", ["a"], "y", weight_matrix_rows=4, weight_matrix_columns=6,
                          W=w, bias=bias)
    close(run(b, a=a), a @ w + bias)
    other = rand(2, 5, 4)
    b = builder(a=a.shape, c=other.shape)
    b.add_batched_mat_mul("mm", ["a", "c"], "y", transpose_b=True)
    close(run(b, a=a, c=other), a @ other.transpose(0, 2, 1))


def test_embedding_nd_looks_ids_up_and_refuses_one_out_of_range():
    table = rand(6, 10)  # (embedding size, vocabulary)
    ids = np.array([[[0], [9], [3]]], np.float32)
    b = builder(x=ids.shape)
    b.add_embedding_nd("emb", "x", "y", 10, 6, table)
    close(run(b, x=ids), table.T[[0, 9, 3]][None])
    with pytest.raises(RuntimeError, match=r"embeddingND 'emb'.*outside \[0, 10\)"):
        run(b, x=np.array([[[10]]], np.float32))


def _torch_lstm_weights(lstm):
    """PyTorch's [i, f, g, o] rows as the builder's [i, f, o, z] lists; one bias from two."""
    w_ih, w_hh = lstm.weight_ih_l0.detach().numpy(), lstm.weight_hh_l0.detach().numpy()
    bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    i, f, g, o = np.split(w_ih, 4)
    ri, rf, rg, ro = np.split(w_hh, 4)
    bi, bf, bg, bo = np.split(bias, 4)
    return [ri, rf, ro, rg], [i, f, o, g], [bi, bf, bo, bg]


@pytest.mark.parametrize("steps,batch,sequence", [(1, 1, True), (5, 3, True), (5, 2, False)])
def test_unidirectional_lstm_against_torch(steps, batch, sequence):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(4, 3)
    x, h0, c0 = rand(steps, batch, 4), rand(1, batch, 3), rand(1, batch, 3)
    b = builder("y", "hn", "cn", x=(steps, batch, 4, 1, 1), h=(1, batch, 3, 1, 1),
                c=(1, batch, 3, 1, 1))
    w_h, w_x, bias = _torch_lstm_weights(lstm)
    b.add_unilstm("lstm", w_h, w_x, bias, 3, 4, ["x", "h", "c"], ["y", "hn", "cn"],
                  output_all=sequence, cell_clip_threshold=500.0)
    blobs = run_all(b, x=x[..., None, None], h=h0[..., None, None], c=c0[..., None, None])
    want, (hn, cn) = lstm(t(x), (t(h0), t(c0)))
    y = want.detach().numpy() if sequence else hn.detach().numpy()
    close(blobs["y"][..., 0, 0], y)
    close(blobs["hn"][..., 0, 0], hn.detach().numpy())
    close(blobs["cn"][..., 0, 0], cn.detach().numpy())


def test_the_lstm_cell_clip_bounds_the_cell_state():
    x = np.full((4, 1, 1, 1, 1), 10.0, np.float32)
    ones = [np.ones((1, 1), np.float32)] * 4
    b = builder("y", "cn", x=x.shape)
    b.add_unilstm("lstm", ones, ones, None, 1, 1, ["x"], ["y", "hn", "cn"], output_all=True,
                  cell_clip_threshold=1.5)
    blobs = run_all(b, x=x)
    # Gates saturate at 1: c grows by ~1 a step, clipped at 1.5; h = o * tanh(c).
    close(blobs["cn"].ravel(), [1.5], atol=1e-4)
    close(blobs["y"].ravel(), np.tanh([1.0, 1.5, 1.5, 1.5]), atol=1e-4)


# ------------------------------------------------------------------ elementwise and shapes


def test_activations_clip_and_softmax():
    x = rand(2, 7) * 3
    cases = {"RELU": np.maximum(x, 0), "TANH": np.tanh(x), "SIGMOID": 1 / (1 + np.exp(-x)),
             "LEAKYRELU": np.where(x >= 0, x, 0.3 * x), "LINEAR": 2 * x + 0.5,
             "SOFTPLUS": np.log1p(np.exp(x)), "ELU": np.where(x >= 0, x, 0.7 * np.expm1(x))}
    params = {"LEAKYRELU": [0.3], "LINEAR": [2.0, 0.5], "ELU": 0.7}
    for name, want in cases.items():
        b = builder(x=x.shape)
        b.add_activation("act", name, "x", "y", params=params.get(name))
        close(run(b, x=x), want, atol=1e-5)
    b = builder(x=x.shape)
    b.add_clip("clip", "x", "y", min_value=-1.0, max_value=6.0)
    close(run(b, x=x), np.clip(x, -1, 6))
    b = builder(x=x.shape)
    b.add_softmax_nd("sm", "x", "y", axis=0)
    close(run(b, x=x), np.exp(x) / np.exp(x).sum(axis=0))


def test_elementwise_broadcasting_and_comparisons():
    a, c = rand(2, 3, 4), rand(3, 1)
    b = builder(a=a.shape, c=c.shape)
    b.add_add_broadcastable("add", ["a", "c"], "y")
    close(run(b, a=a, c=c), a + c)
    b = builder(a=a.shape)
    b.add_elementwise("plus", ["a"], "y", "ADD", alpha=2.5)
    close(run(b, a=a), a + 2.5)
    b = builder(a=a.shape, c=a.shape)
    b.add_elementwise("mul", ["a", "c"], "y", "MULTIPLY")
    close(run(b, a=a, c=2 * a), 2 * a * a)
    b = builder(a=a.shape)
    b.add_less_than("lt", ["a"], "y", alpha=0.1)
    close(run(b, a=a), (a < 0.1).astype(np.float32))
    b = builder(m=a.shape, a=a.shape, c=c.shape)
    b.add_where_broadcastable("where", ["m", "a", "c"], "y")
    mask = (a > 0).astype(np.float32)
    close(run(b, m=mask, a=a, c=c), np.where(mask != 0, a, c))


def test_reductions_and_batchnorm():
    x = rand(2, 3, 4, 5)
    b = builder(x=x.shape)
    b.add_reduce_mean("mean", "x", "y", axes=[1, 2], keepdims=False)
    close(run(b, x=x), x.mean(axis=(1, 2)))
    b = builder(x=x.shape)
    b.add_reduce_mean("mean", "x", "y", keepdims=False, reduce_all=True)
    close(run(b, x=x), [x.mean()])  # no rank-0 blob: a scalar stays rank 1
    gamma, beta, mean, var = rand(3), rand(3), rand(3), np.abs(rand(3)) + 0.5
    b = builder(x=x.shape)
    b.add_batchnorm("bn", 3, gamma, beta, mean, var, "x", "y", epsilon=1e-3)
    want = F.batch_norm(t(x), t(mean), t(var), t(gamma), t(beta), eps=1e-3)
    close(run(b, x=x), want.numpy())


def test_shape_layers():
    x = rand(2, 3, 4)
    checks = [
        (lambda b: b.add_transpose("tr", [2, 0, 1], "x", "y"), x.transpose(2, 0, 1)),
        (lambda b: b.add_reshape_static("rs", "x", "y", [-1, 4]), x.reshape(-1, 4)),
        (lambda b: b.add_expand_dims("ex", "x", "y", [0, -1]), x[None, ..., None]),
        (lambda b: b.add_get_shape("sh", "x", "y"), np.array([2, 3, 4], np.float32)),
        (lambda b: b.add_slice_static("ss", "x", "y", [1, 0, 3], [2, 3, 0], [1, 2, -1],
                                      [False, True, False], [False, True, True],
                                      [True, False, False]), x[1, 0:3:2, 3::-1]),
        (lambda b: b.add_slice("sl", "x", "y", "width", 1, -1, 2), x[..., 1:-1:2]),
        (lambda b: b.add_slice("sl", "x", "y", "channel", 0, 1, 1), x[0:1]),
        (lambda b: b.add_copy("cp", "x", "y"), x),
    ]
    for add, want in checks:
        b = builder(x=x.shape)
        add(b)
        close(run(b, x=x), want)
    b = builder(x=(1, 3, 1))
    b.add_squeeze("sq", "x", "y", axes=[0, 2])
    close(run(b, x=x[:1, :, :1]), x[0, :, 0])


def test_concat_split_gather_scatter_fill_and_constants():
    x = rand(4, 3)
    b = builder(x=x.shape)
    b.add_load_constant_nd("k", "k", np.arange(6, dtype=np.float32).reshape(2, 3), [2, 3])
    b.add_concat_nd("cat", ["x", "k"], "y", axis=0)
    close(run(b, x=x), np.concatenate([x, np.arange(6).reshape(2, 3)]))
    b = builder(x=x.shape)
    b.add_split_nd("split", "x", ["y", "rest"], axis=0, split_sizes=[1, 3])
    close(run(b, x=x), x[:1])
    b = builder(x=x.shape, i=(2,))
    b.add_gather("g", ["x", "i"], "y", axis=0)
    close(run(b, x=x, i=np.array([3, 1], np.float32)), x[[3, 1]])
    for mode, want in [("UPDATE", lambda d, u: np.stack([d[0], u[0], d[2], u[1]])),
                       ("ADD", lambda d, u: np.stack([d[0], d[1] + u[0], d[2], d[3] + u[1]]))]:
        b = builder(d=x.shape, i=(2,), u=(2, 3))
        b.add_scatter("s", ["d", "i", "u"], "y", axis=0, mode=mode)
        u = rand(2, 3)
        close(run(b, d=x, i=np.array([1, 3], np.float32), u=u), want(x, u))
    b = builder(s=(2,))
    b.add_fill_dynamic("fill", "s", "y", value=2.5)
    close(run(b, s=np.array([2, 3], np.float32)), np.full((2, 3), 2.5))


def test_the_loop_runs_its_body_while_its_condition_holds():
    """acc = x; i = 0; while i < 5: acc = 2 * acc; i = i + 1 -- the condition network and the
    body read and write the enclosing blobs."""
    b = builder(x=(1,))
    b.add_load_constant_nd("i0", "i", np.zeros(1, np.float32), [1])
    b.add_load_constant_nd("n", "n", np.full(1, 5, np.float32), [1])
    b.add_copy("acc0", "x", "acc")
    loop = b.add_loop("loop", condition="go")
    cond = NeuralNetworkBuilder(nn_spec=loop.loop.conditionNetwork,
                                disable_rank5_shape_mapping=True)
    cond.add_less_than("lt", ["i", "n"], "go")
    body = NeuralNetworkBuilder(nn_spec=loop.loop.bodyNetwork, disable_rank5_shape_mapping=True)
    body.add_elementwise("double", ["acc", "acc"], "acc2", "ADD")
    body.add_copy("acc_back", "acc2", "acc")
    body.add_elementwise("inc", ["i"], "i2", "ADD", alpha=1.0)
    body.add_copy("i_back", "i2", "i")
    b.add_copy("out", "acc", "y")
    close(run(b, x=np.array([3.0], np.float32)), [96.0])


def test_a_layer_it_does_not_implement_is_refused_naming_it():
    b = builder(x=(1, 2, 4, 4))
    b.add_upsample("up", 2, 2, "x", "mid")
    b.add_activation("relu", "RELU", "mid", "y")
    with pytest.raises(Unsupported, match=r"test: the neuralnetwork interpreter does not "
                                          r"implement upsample \(x1\); it implements"):
        Interpreter(b.spec, "test")


def test_quantized_weights_and_a_deconvolution_are_refused():
    b = builder(x=(2, 5))
    b.add_inner_product("fc", rand(3, 5), None, 5, 3, False, "x", "y")
    b.spec.neuralNetwork.layers[0].innerProduct.weights.int8RawValue = b"\x00" * 15
    with pytest.raises(Unsupported, match="innerProduct 'fc': quantized weights"):
        run(b, x=rand(2, 5))
    b = builder(x=(1, 2, 4, 4))
    b.add_convolution("deconv", 2, 2, 3, 3, 1, 1, "valid", 1, rand(3, 3, 2, 2), None, False,
                      is_deconv=True, output_shape=[6, 6], input_name="x", output_name="y")
    with pytest.raises(Unsupported, match="convolution 'deconv': deconvolution"):
        run(b, x=rand(1, 2, 4, 4))
