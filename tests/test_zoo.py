"""The model zoo: both frameworks build the same network, ending in a softmax.

Each model is built once per framework (module-scoped caches). Besides parameter counts and output
shapes, `test_same_function_with_ported_weights` copies the torch weights into the Keras model
(layers are matched by name: Keras name == torch module path with "." -> "_") and checks that both
compute the same probabilities, which shows the two builds are the same network layer for layer.
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest

import models
from models import HIDDEN_SIZE, ZOO, get_spec

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

NAMES = list(ZOO)
# Expected trainable parameter counts (torch), computed by hand from the architectures:
EXPECTED_TORCH_PARAMS = {
    "lenet5": 61_706,  # 156 + 2,416 + 48,120 + 10,164 + 850
    "resnet18": 11_173_962,  # the usual CIFAR ResNet-18 figure
    "vgg16": 15_253_578,  # 14,719,818 conv + 8,448 BN + 262,656 * 2 + 5,130 dense
    "lstm": 1_412_354,  # 1,280,000 embedding + 4*128*(128+128) + 2*4*128 + 258
    "gru": 1_379_330,  # 1,280,000 embedding + 3*128*(128+128) + 2*3*128 + 258
}
BATCH = 2


@pytest.fixture(scope="module")
def built():
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, framework: str):
        if (name, framework) not in cache:
            torch.manual_seed(0)
            keras.utils.set_random_seed(0)
            model = ZOO[name].build(framework)
            if framework == "pytorch":
                model.eval()
            cache[name, framework] = model
        return cache[name, framework]

    return get


def torch_params(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def keras_params(model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def sample_batch(spec, seed: int = 0) -> np.ndarray:
    """A canonical-layout batch (NHWC images / token ids with some pre-padding)."""
    rng = np.random.default_rng(seed)
    if spec.kind == "tokens":
        ids = rng.integers(2, models.VOCAB_SIZE, size=(BATCH, *spec.input_shape))
        ids[0, : spec.input_shape[0] // 2] = models.PAD_ID
        return ids.astype(spec.input_dtype)
    return rng.random((BATCH, *spec.input_shape), dtype=np.float32)


def run_both(spec, tmodel, kmodel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        pt = tmodel(torch.from_numpy(spec.to_framework_layout(x, "pytorch"))).numpy()
    ke = np.asarray(kmodel(spec.to_framework_layout(x, "keras"), training=False))
    return pt, ke


@pytest.mark.parametrize("name", NAMES)
def test_param_counts_match_across_frameworks(name, built):
    spec = ZOO[name]
    pt, ke = torch_params(built(name, "pytorch")), keras_params(built(name, "keras"))
    assert pt == ke + spec.param_difference, (
        f"{name}: torch {pt:,} vs keras {ke:,} trainable params; expected difference "
        f"{spec.param_difference:,} ({spec.param_difference_reason or 'none'})"
    )


@pytest.mark.parametrize("name", NAMES)
def test_param_count_is_the_architectures(name, built):
    pt = torch_params(built(name, "pytorch"))
    assert pt == EXPECTED_TORCH_PARAMS[name], f"{name}: {pt:,} trainable params"


def test_param_count_sanity_ranges(built):
    assert 11_100_000 < torch_params(built("resnet18", "pytorch")) < 11_200_000
    assert 15_200_000 < torch_params(built("vgg16", "pytorch")) < 15_300_000
    assert 60_000 < torch_params(built("lenet5", "pytorch")) < 62_000


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_probabilities(name, built):
    spec = ZOO[name]
    pt, ke = run_both(spec, built(name, "pytorch"), built(name, "keras"), sample_batch(spec))
    for framework, out in (("pytorch", pt), ("keras", ke)):
        assert out.shape == (BATCH, spec.num_classes), f"{framework}: shape {out.shape}"
        assert (out >= 0).all(), f"{framework}: negative probabilities"
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5, err_msg=framework)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "vgg16"])
def test_torch_logits_feed_the_softmax(name, built):
    spec, tmodel = ZOO[name], built(name, "pytorch")
    x = torch.from_numpy(spec.to_framework_layout(sample_batch(spec), "pytorch"))
    with torch.no_grad():
        np.testing.assert_allclose(
            tmodel(x).numpy(), torch.softmax(tmodel.logits(x), dim=1).numpy(), atol=1e-6
        )


# --- weight porting: torch -> keras, by layer name --------------------------------------------


def _gru_gates(w: np.ndarray, h: int) -> np.ndarray:
    """torch GRU gate blocks (r, z, n) along axis 0 -> Keras order (z, r, h)."""
    r, z, n = w[:h], w[h : 2 * h], w[2 * h :]
    return np.concatenate([z, r, n])


def port_torch_to_keras(spec, tmodel, kmodel) -> int:
    """Copy every torch parameter and BN statistic into the same-named Keras layer."""
    nn = torch.nn
    ported = 0
    for path, mod in tmodel.named_modules():
        if not isinstance(mod, (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.Embedding, nn.LSTM, nn.GRU)):
            continue
        layer = kmodel.get_layer(path.replace(".", "_"))
        p = {k: v.detach().numpy() for k, v in mod.state_dict().items()}
        if isinstance(mod, nn.Conv2d):
            ws = [p["weight"].transpose(2, 3, 1, 0)] + ([p["bias"]] if "bias" in p else [])
        elif isinstance(mod, nn.Linear):
            w = p["weight"].T
            if spec.name == "lenet5" and path == "fc1":  # torch flattens CHW, Keras HWC
                w = w.reshape(16, 5, 5, -1).transpose(1, 2, 0, 3).reshape(400, -1)
            ws = [w, p["bias"]]
        elif isinstance(mod, nn.BatchNorm2d):
            ws = [p["weight"], p["bias"], p["running_mean"], p["running_var"]]
        elif isinstance(mod, nn.Embedding):
            ws = [p["weight"]]
        elif isinstance(mod, nn.LSTM):  # same gate order (i, f, g/c, o); Keras sums the biases
            ws = [p["weight_ih_l0"].T, p["weight_hh_l0"].T, p["bias_ih_l0"] + p["bias_hh_l0"]]
        else:  # GRU, reset_after=True: bias rows are (input, recurrent)
            h = HIDDEN_SIZE
            ws = [
                _gru_gates(p["weight_ih_l0"], h).T,
                _gru_gates(p["weight_hh_l0"], h).T,
                np.stack([_gru_gates(p["bias_ih_l0"], h), _gru_gates(p["bias_hh_l0"], h)]),
            ]
        layer.set_weights(ws)
        ported += 1
    return ported


@pytest.mark.parametrize("name", NAMES)
def test_same_function_with_ported_weights(name, built):
    spec, tmodel, kmodel = ZOO[name], built(name, "pytorch"), built(name, "keras")
    # Non-trivial BN statistics, so that BN epsilon/statistics mismatches would show.
    gen = torch.Generator().manual_seed(1)
    for mod in tmodel.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
    assert port_torch_to_keras(spec, tmodel, kmodel) > 0
    x = sample_batch(spec, seed=1)
    pt, ke = run_both(spec, tmodel, kmodel, x)
    np.testing.assert_allclose(ke, pt, atol=1e-5)
    # At random init the probabilities are near uniform, so also compare the logits (log-probs,
    # centred per row): agreement is ~1e-7, whereas e.g. Keras' asymmetric "same" padding in
    # ResNet's strided convs would differ by ~2e-3.
    np.testing.assert_allclose(centred_log(ke), centred_log(pt), atol=1e-5)


def centred_log(p: np.ndarray) -> np.ndarray:
    logp = np.log(p.astype(np.float64))
    return logp - logp.mean(axis=1, keepdims=True)


# --- registry ----------------------------------------------------------------------------------


def test_get_spec_unknown_lists_valid_names():
    with pytest.raises(KeyError) as exc:
        get_spec("nope")
    msg = str(exc.value)
    assert "nope" in msg
    for name in ZOO:
        assert name in msg


def test_zoo_declarations():
    """The zoo is declared through convcheck.declare_model: registered under its names, with
    what an input strategy or an attack draws (kind) and the zoo's markers."""
    from convcheck.declarations.registry import MODELS

    assert set(ZOO) <= set(MODELS.names())
    for name, spec in ZOO.items():
        assert get_spec(name) is spec
        assert spec.frameworks == ("pytorch", "keras")
        assert all(s.kind == "build" for s in spec.sources.values()), name
        if spec.dataset == "imdb":
            assert (spec.kind, spec.markers) == ("tokens", ("rnn",)), name
            assert spec.input.vocab_size == models.VOCAB_SIZE and spec.input_dtype == "int64"
        else:
            assert spec.kind == "image" and spec.markers[0] == "cnn", name
            assert spec.input.range == (0.0, 1.0)
            assert spec.layout("pytorch") == "nchw" and spec.layout("keras") == "nhwc"
    assert [n for n, s in ZOO.items() if "slow" in s.markers] == ["resnet18", "vgg16"]


def test_lstm_param_difference_is_documented():
    spec = get_spec("lstm")
    assert spec.param_difference == 4 * HIDDEN_SIZE
    assert spec.param_difference_reason
    assert get_spec("gru").param_difference == 0


def test_keras_rnn_unroll_is_selectable():
    from models import rnn

    for cell in ("lstm", "gru"):
        model = rnn.build_keras(get_spec(cell), unroll=True)
        assert model.get_layer("rnn").unroll is True
        assert model.inputs[0].dtype == "int64"
