"""Adversarial sets made on a trained original, to be replayed on its conversions (the study's RQ3).

An attack runs once per original model (cached like a trained model); every conversion of that
model is then judged on the same adversarial inputs. Image classifiers get two attacks through
adversarial-robustness-toolbox (ART): FGSM, white-box, through ART's PyTorch and TensorFlow
estimators, and the decision-based Boundary attack, which only sees labels. Text classifiers get
the genetic word-substitution attack of convcheck.robustness.genetic.

Inputs and adversarial examples are in the original's own layout (NCHW for PyTorch, NHWC for
Keras, token ids for text), which is also the layout its conversions take.
"""
from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from convcheck import frameworks

# The attacks and their parameters are part of the profiles' schema (convcheck.settings): validating
# a profile imports no attack library.
from convcheck.settings import ATTACK_PARAMS as PARAMS  # noqa: F401
from convcheck.settings import ATTACKS

# Attacks whose every example must have moved: ART's Boundary attack returns an input unchanged
# when it cannot start, and its start unchanged when its first step fails; FGSM leaves an input
# unchanged where the loss gradient is zero.
MUST_CHANGE = ("fgsm", "boundary")
PROGRESS_S = 30.0  # a long attack reports its progress this often


class AttackError(RuntimeError):
    """An attack could not be run as configured (bad parameters, too few usable samples)."""


def why_not(attack: str, spec, labelled: bool = True) -> str | None:
    """Why `attack` cannot run on `spec`'s model (None: it can); worded to follow the attack's
    name ("fgsm: needs ..."). labelled: whether the model's evaluation data has labels."""
    if not spec.task.classification:
        return f"needs a classifier; {spec.name} is a {spec.task.kind} model (attacks fool classifiers)"
    if not labelled:
        return (f"needs labels: it attacks samples the original classifies correctly, and "
                f"{spec.name}'s evaluation data has no labels (no y)")
    if ATTACKS[attack] == "image":
        if not spec.input.is_image:
            return (f"needs an image input (input.layout nhwc or nchw, 3 dimensions); "
                    f"{spec.name}'s input is {spec.input.layout} {list(spec.input.shape)}")
        if spec.input.range is None:
            return "needs the input's value range (input.range) to clip to"
    elif spec.input.layout != "tokens" or spec.input.vocab_size is None:
        return (f"substitutes words: needs token input with input.vocab_size; "
                f"{spec.name}'s input is {spec.input.layout}")
    return None


def attacks_for(spec, labelled: bool = True) -> tuple[str, ...]:
    return tuple(a for a in ATTACKS if why_not(a, spec, labelled) is None)


@dataclass
class AdversarialSet:
    """Seeds taken from the test set, the adversarial examples made from them on the original,
    and what the attack reported (per attack: parameters, perturbation sizes, queries, time)."""

    attack: str
    indices: np.ndarray  # test-set indices of the seeds
    x: np.ndarray  # the seeds, in the original's layout
    x_adv: np.ndarray
    labels: np.ndarray
    info: dict = field(default_factory=dict)
    starts: np.ndarray | None = None  # where each walk started, for attacks that walk (Boundary)

    FILE = "adversarial.npz"

    @property
    def changed(self) -> np.ndarray:
        """Per sample: did the attack move, i.e. does the example differ from its seed and,
        for a walk, from where it started?"""
        differs = lambda a: (self.x_adv != a).reshape(len(self.x), -1).any(axis=1)  # noqa: E731
        moved = differs(self.x)
        return moved if self.starts is None else moved & differs(self.starts)

    def save(self, directory: Path) -> None:
        extra = {} if self.starts is None else {"starts": self.starts}
        np.savez_compressed(directory / self.FILE, indices=self.indices, x=self.x,
                            x_adv=self.x_adv, labels=self.labels, **extra)

    @classmethod
    def load(cls, directory: Path, attack: str, info: dict) -> "AdversarialSet":
        with np.load(directory / cls.FILE) as f:
            return cls(attack, f["indices"], f["x"], f["x_adv"], f["labels"], info,
                       f["starts"] if "starts" in f else None)


def select_seeds(probs: np.ndarray, labels: np.ndarray, n: int,
                 usable: np.ndarray | None = None) -> np.ndarray:
    """The first n test samples (in the test set's seeded order) the original classifies
    correctly, among those `usable` for the attack (e.g. reviews of 10-100 words)."""
    ok = np.argmax(probs, axis=1) == labels
    if usable is not None:
        ok &= usable
    chosen = np.flatnonzero(ok)[:n]
    if len(chosen) == 0:
        raise AttackError("no test sample is both correctly classified and usable for the attack")
    return chosen


# --------------------------------------------------------------------------- image attacks


def _torch_logits_classifier(model, spec):
    """ART's PyTorch estimator on the model's logits: the softmax saturates in float32, so a
    confident sample's loss gradient through the probabilities is exactly zero and FGSM would
    leave it unchanged."""
    torch = frameworks.torch()
    from art.estimators.classification import PyTorchClassifier

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            x = x.float()
            if hasattr(self.m, "logits"):
                return self.m.logits(x)
            out = self.m(x)
            # log-probabilities: the softmax's logits up to a constant per sample
            return out if spec.task.output == "logits" else torch.log(out.clamp_min(1e-30))

    gpu = frameworks.device_of("pytorch") != "cpu"
    if gpu:  # ART moves the module it is given onto its device: keep the predictor's on the CPU
        model = copy.deepcopy(model)
    return PyTorchClassifier(Logits(model.eval()), loss=torch.nn.CrossEntropyLoss(),
                             input_shape=spec.framework_input_shape("pytorch"),
                             nb_classes=spec.num_classes, clip_values=spec.input.range,
                             device_type="gpu" if gpu else "cpu")


def _keras_logits_classifier(model, spec):
    """ART's TensorFlow v2 estimator on the model's logits (see _torch_logits_classifier): the
    last Dense layer rebuilt without its softmax, sharing every other layer."""
    keras, tf = frameworks.keras(), frameworks.tf()
    from art.estimators.classification import TensorFlowV2Classifier

    last = model.layers[-1]
    if spec.task.output == "logits":
        logits = model
    elif isinstance(last, keras.layers.Dense) and last.get_config()["activation"] == "softmax":
        cfg = last.get_config() | {"activation": "linear", "name": f"{last.name}_logits"}
        dense = type(last).from_config(cfg)
        logits = keras.Model(model.inputs, dense(last.input))
        dense.set_weights(last.get_weights())
    else:  # log-probabilities: the softmax's logits up to a constant per sample
        logits = keras.Model(model.inputs, keras.ops.log(keras.ops.maximum(model.outputs[0], 1e-30)))
    return TensorFlowV2Classifier(
        logits, nb_classes=spec.num_classes, input_shape=spec.framework_input_shape("keras"),
        loss_object=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        clip_values=spec.input.range)


def fgsm(predictor, spec, framework: str, x: np.ndarray, labels: np.ndarray, *,
         eps: float, batch_size: int = 64) -> np.ndarray:
    """Untargeted FGSM (L-inf, step eps) against the true labels, through ART's estimator for
    the original's framework."""
    from art.attacks.evasion import FastGradientMethod

    make = _torch_logits_classifier if framework == "pytorch" else _keras_logits_classifier
    est = make(predictor.model, spec)
    attack = FastGradientMethod(est, norm=np.inf, eps=eps, batch_size=batch_size)
    with _keras_device(framework):
        return attack.generate(x=x.astype(np.float32), y=labels).astype(np.float32)


def _keras_device(framework: str):
    """TensorFlow's placement on the session's device for a Keras original (on the CPU, its own
    placement, as before there was a choice); torch's estimators carry their device."""
    dev = frameworks.device_of(framework) if framework == "keras" else "cpu"
    return contextlib.nullcontext() if dev == "cpu" else frameworks.tf().device(dev)


def _on_device(predictor, framework: str) -> Callable[[np.ndarray], np.ndarray]:
    """The original's predict on the session's device: Boundary queries it tens of thousands
    of times per sample, which is what a GPU is lent for."""
    if frameworks.device_of(framework) == "cpu":
        return predictor.predict
    if framework == "keras":
        def keras_predict(batch):
            with _keras_device(framework):
                return predictor.predict(batch)
        return keras_predict
    from convcheck.runtimes.base import _first

    torch = frameworks.torch()
    model = copy.deepcopy(predictor.model).to("cuda").eval()

    def torch_predict(batch):
        with torch.inference_mode():
            out = model(torch.from_numpy(np.ascontiguousarray(batch)).to("cuda"))
            return _first(out).cpu().numpy()
    return torch_predict


def boundary(predictor, spec, framework: str, x: np.ndarray, labels: np.ndarray, *,
             starts: np.ndarray, seed: int, **params) -> np.ndarray:
    """Untargeted Boundary attack (Brendel et al. 2018) through ART, on the model's decisions
    only: the original is wrapped as ART's BlackBoxClassifier.

    Each walk starts from `starts` (a test image the original labels differently) rather than
    ART's unseeded random draw: the run is reproducible and no walk fails to start."""
    from art.attacks.evasion import BoundaryAttack
    from art.estimators.classification import BlackBoxClassifier

    on_device = _on_device(predictor, framework)

    def predict(batch):
        # numpy 2 keeps ART's float64 step sizes: feed the model the float32 it was built for
        return on_device(np.asarray(batch, dtype=np.float32))

    est = BlackBoxClassifier(predict, spec.framework_input_shape(framework), spec.num_classes,
                             clip_values=spec.input.range)
    attack = BoundaryAttack(est, targeted=False, verbose=False, **params)
    # ART's orthogonal steps draw from numpy's global generator: seed it, and put it back after
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        x_adv = attack.generate(x=x.astype(np.float32), x_adv_init=starts.astype(np.float32))
    finally:
        np.random.set_state(state)
    return x_adv.astype(np.float32)


def boundary_starts(probs: np.ndarray, x_pool: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """For each seed, the nearest (L2) test image the original labels differently."""
    pred = np.argmax(probs, axis=1)
    flat = x_pool.reshape(len(x_pool), -1)
    out = np.empty((len(seeds), *x_pool.shape[1:]), dtype=x_pool.dtype)
    for i, s in enumerate(seeds):
        other = np.flatnonzero(pred != pred[s])
        if len(other) == 0:
            raise AttackError("the original labels every test image alike: Boundary cannot start")
        d = ((flat[other] - flat[s]) ** 2).sum(axis=1)
        out[i] = x_pool[other[np.argmin(d)]]
    return out


# --------------------------------------------------------------------------- one entry point


def make(attack: str, original, x_test: np.ndarray, y_test: np.ndarray, probs: np.ndarray,
         params: dict, *, seed: int, neighbours: Callable[[], np.ndarray] | None = None,
         log: Callable[[str], None] = print) -> AdversarialSet:
    """Attack `original` (a workbench Original) on test samples it classifies correctly.

    x_test/y_test: the test set in the original's layout; probs: the original's outputs on it;
    params: the profile's attack table; neighbours(): the word-neighbour table (text only)."""
    from convcheck.robustness import genetic

    spec = original.spec
    reason = why_not(attack, spec)
    if reason:
        raise AttackError(f"{attack}: {reason}")
    params = dict(params)
    n = params.pop("n_samples")
    usable = None
    if attack == "genetic":
        words = (x_test != spec.input.pad_id).sum(axis=1)
        usable = (words >= params["min_words"]) & (words <= params["max_words"])
    seeds = select_seeds(probs, y_test, n, usable)
    if len(seeds) < n:
        log(f"{attack} on {original.id}: only {len(seeds)} of the {n} samples asked for are "
            f"correctly classified and usable")
    x, y = x_test[seeds], y_test[seeds]
    info: dict = {"params": params, "n_asked": n, "n_seeds": len(seeds), "seed": seed}
    t0, last = time.perf_counter(), [time.perf_counter()]

    def in_chunks(run: Callable[[np.ndarray], list]) -> list:
        """run(positions) over ten chunks of the seeds, reporting progress on long attacks."""
        out = []
        for c in np.array_split(np.arange(len(seeds)), min(len(seeds), 10)):
            out += run(c)
            now = time.perf_counter()
            if now - last[0] >= PROGRESS_S and c[-1] + 1 < len(seeds):
                last[0] = now
                log(f"{attack} on {original.id}: {c[-1] + 1}/{len(seeds)} samples, {now - t0:.0f}s")
        return out

    p, fw, starts = original.predictor, original.framework, None
    if attack == "fgsm":
        lo, hi = spec.input.range
        eps = params["eps"]
        share = eps.get(spec.dataset, eps.get("default")) if isinstance(eps, dict) else eps
        if share is None:
            raise AttackError(f"the profile's attack.fgsm.eps has no entry for data set "
                              f"{spec.dataset!r} and no default")
        info["eps"] = share * (hi - lo)  # eps is a share of the value range
        x_adv = fgsm(p, spec, fw, x, y, eps=info["eps"])
    elif attack == "boundary":
        starts = boundary_starts(probs, x_test, seeds)
        x_adv = np.stack(in_chunks(lambda c: list(boundary(
            p, spec, fw, x[c], y[c], starts=starts[c], seed=seed + int(c[0]), **params))))
        info["start"] = perturbation_sizes(x, starts)
    else:
        gp, rng = genetic.GeneticParams(**params), np.random.default_rng(seed)
        table = neighbours()[:, :gp.neighbours]
        special = (spec.input.pad_id, spec.input.oov_id)
        predict = _on_device(p, fw)
        results = in_chunks(lambda c: [genetic.attack(predict, x[i], int(y[i]), table, gp, rng,
                                                      special) for i in c])
        x_adv = np.stack([r.x_adv for r in results])
        done = [r for r in results if r.success]
        info |= {"successes": len(done), "discarded": sum(r.discarded for r in results),
                 "modification_rate_mean": float(np.mean([r.modification_rate for r in done]))
                 if done else None,
                 "queries_mean": float(np.mean([r.queries for r in results]))}
    info["seconds"] = time.perf_counter() - t0
    if spec.kind == "image":
        info["perturbation"] = perturbation_sizes(x, x_adv)
    return AdversarialSet(attack, seeds, x, x_adv.astype(x.dtype), y, info, starts)


def perturbation_sizes(x: np.ndarray, x_adv: np.ndarray) -> dict:
    d = (x_adv.astype(np.float64) - x).reshape(len(x), -1)
    return {"linf_mean": float(np.abs(d).max(axis=1).mean()),
            "l2_mean": float(np.sqrt((d ** 2).sum(axis=1)).mean())}

