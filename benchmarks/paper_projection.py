"""What the `paper` profile costs: measured on this machine at reduced size, projected to the
profile's full size on this CPU and on one GPU.

The paper profile (the study's settings: all data, 10 trained instances per model, ART's
Boundary defaults) is far beyond a 2-core CPU. What can be measured here is measured, per model
and framework, with the suite's own code:

- training: seconds per training sample over one epoch (the second of two, after TensorFlow's
  tracing and the allocators warm up) on the first --train-samples samples (fewer for the
  large CNNs), with the paper's
  hyperparameters (batch size, optimizer); the model's forward FLOPs per sample from torch's
  own counter (torch.utils.flop_counter; an LSTM layer, which it does not count, from its
  shapes: 8·H·(I+H) per step);
- attacks: the suite's attacks (convcheck.robustness.attacks.make) on that model with the
  paper's parameters except the size: Boundary at --boundary-iters iterations on a few samples,
  the genetic attack at --genetic-generations generations; every model query is counted and
  timed, and the per-sample cost scaled to the paper's iterations/generations and n_samples
  (linear: ART's Boundary can stop early when its steps collapse, so an upper bound).

The projection to the full size on this CPU multiplies by the paper's samples, epochs and seeds.
The GPU figure is a model, not a measurement, and prints its assumptions: training runs at
--gpu-tflops sustained (3x the forward FLOPs per training sample) but no faster than a
recurrent layer's steps allow (--gpu-step-us each, forward and backward); each attack query
costs the largest of --gpu-query-ms (a kernel-launch-bound small batch in eager mode), its
recurrent steps and its FLOPs at that rate. The training sets are the study's (MNIST 60000,
CIFAR-10 50000, IMDb 25000), not the smaller offline substitutes.

    .venv/bin/python benchmarks/paper_projection.py                 # the zoo, both frameworks
    .venv/bin/python benchmarks/paper_projection.py --models lenet5 --frameworks pytorch
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from convcheck import frameworks  # noqa: E402
from convcheck.pipeline import train  # noqa: E402
from convcheck.pipeline.builds import Original  # noqa: E402
from convcheck.pipeline.workbench import Workbench  # noqa: E402
from convcheck.robustness import attacks  # noqa: E402
from convcheck.runtimes.originals import KerasPredictor, TorchPredictor  # noqa: E402
from convcheck.settings import get_profile  # noqa: E402
from models import FRAMEWORKS, ZOO  # noqa: E402

# The study's training sets (the standard files --convcheck-data-dir reads): the offline
# substitutes this machine has are smaller, and the projection is of the study's run.
STUDY_TRAIN = {"mnist": 60000, "cifar10": 50000, "imdb": 25000}


def forward_flops(spec) -> float:
    """Forward FLOPs of one sample (the PyTorch twin: both frameworks build the same layers)."""
    torch = frameworks.torch()
    from torch.utils.flop_counter import FlopCounterMode

    model = spec.build("pytorch").eval()
    shape = spec.framework_input_shape("pytorch")
    tokens = spec.input.dtype == "int64"
    x = (torch.full((1, *shape), 2, dtype=torch.int64) if tokens
         else torch.zeros((1, *shape)))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    flops = float(counter.get_total_flops())
    for m in model.modules():  # aten.lstm has no formula in the counter
        if isinstance(m, torch.nn.LSTM):
            dirs = 2 if m.bidirectional else 1
            steps = shape[0]
            for layer in range(m.num_layers):
                inputs = m.input_size if layer == 0 else m.hidden_size * dirs
                flops += dirs * steps * 8 * m.hidden_size * (inputs + m.hidden_size)
    return flops


def steps_of(spec) -> int:
    """Sequential steps of one forward pass: a recurrent model's sequence length, else 0."""
    torch = frameworks.torch()
    model = spec.build("pytorch")
    rnn = any(isinstance(m, torch.nn.RNNBase) for m in model.modules())
    return spec.framework_input_shape("pytorch")[0] if rnn else 0


def time_training(spec, fw, ds, hp, n):
    """(seconds per sample of the second epoch, the trained model)"""
    x = spec.to_framework_layout(ds.x_train[:n], fw)
    y = ds.y_train[:n]
    ends: list[float] = []  # when each epoch's line came: the second epoch is their gap
    model = train.train(spec, fw, x, y, dataclasses.replace(hp, epochs=2), 0,
                        lambda line: ends.append(time.perf_counter()), f"{spec.name}-{fw}")
    return (ends[1] - ends[0]) / len(x), model


class Counted:
    """A predictor whose queries are counted and timed."""

    def __init__(self, predictor):
        self.inner, self.model = predictor, predictor.model
        self.calls, self.rows, self.seconds = 0, 0, 0.0

    def predict(self, batch):
        t0 = time.perf_counter()
        out = self.inner.predict(batch)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.rows += len(batch)
        return out


def time_attack(bench, spec, fw, model, attack, params, n):
    """Per attacked sample: (seconds, queries, rows queried), at `params`."""
    predictor = (TorchPredictor if fw == "pytorch" else KerasPredictor)(model)
    counted = Counted(predictor)
    with tempfile.TemporaryDirectory() as tmp:
        original = Original(spec, fw, 0, Path(tmp), counted, {}, f"{spec.name}-{fw}")
        x, y = bench.test_set(spec, fw)
        probs = predictor.predict(x[:2000])
        t0 = time.perf_counter()
        adv = attacks.make(attack, original, x[:2000], y[:2000], probs,
                           params | {"n_samples": n}, seed=0,
                           neighbours=lambda: bench.neighbours(spec.dataset), log=lambda s: None)
        secs = time.perf_counter() - t0
    k = len(adv.x)
    return secs / k, counted.calls / k, counted.rows / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(ZOO))
    ap.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    ap.add_argument("--train-samples", type=int, default=4096,
                    help="training samples timed (and attacked model's) for a small model")
    ap.add_argument("--large-train-samples", type=int, default=1024,
                    help="the same for a model over 100 MFLOP forward (ResNet-18, VGG-16)")
    ap.add_argument("--boundary-iters", type=int, default=20)
    ap.add_argument("--boundary-samples", type=int, default=3)
    ap.add_argument("--genetic-generations", type=int, default=2)
    ap.add_argument("--genetic-samples", type=int, default=3)
    ap.add_argument("--fgsm-samples", type=int, default=64)
    ap.add_argument("--gpu-tflops", type=float, default=20.0,
                    help="assumed sustained training throughput of one GPU (default 20: about "
                         "30%% of an H100's 67 TFLOP/s FP32 peak)")
    ap.add_argument("--gpu-query-ms", type=float, default=0.3,
                    help="assumed floor of one small-batch model query on a GPU, eager mode: "
                         "tens of kernel launches and two host-device copies")
    ap.add_argument("--gpu-step-us", type=float, default=20.0,
                    help="assumed floor of one recurrent time step on a GPU (per direction)")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args()
    paper = get_profile("paper")
    seeds = len(paper.seeds)
    bench = Workbench(paper, None, Path(tempfile.mkdtemp(prefix="paper-projection-")))
    rows, totals = [], {"cpu": 0.0, "gpu": 0.0}
    print(f"threads {frameworks.threads()}; GPU model: {args.gpu_tflops} TFLOP/s sustained, "
          f"{args.gpu_query_ms} ms per query floor")
    for name in args.models.split(","):
        spec, hp = ZOO[name], paper.train[name]
        ds = bench.dataset(spec)
        flops = forward_flops(spec)
        for fw in args.frameworks.split(","):
            per_sample, model = time_training(
                spec, fw, ds, hp, args.train_samples if flops < 1e8 else args.large_train_samples)
            n_train = STUDY_TRAIN.get(spec.dataset, len(ds.x_train))
            cpu_train = per_sample * n_train * hp.epochs * seeds
            batches = -(-n_train // hp.batch_size) * hp.epochs * seeds
            # a recurrent layer's steps run one after another: launch-bound on a GPU
            step_floor = 3 * steps_of(spec) * args.gpu_step_us / 1e6
            gpu_train = max(3 * flops * n_train * hp.epochs * seeds / (args.gpu_tflops * 1e12),
                            batches * step_floor)
            row = {"model": name, "framework": fw, "forward_flops": flops,
                   "train_s_per_sample_cpu": per_sample,
                   "cpu_gflops": 3 * flops / per_sample / 1e9,
                   "n_train": n_train, "epochs": hp.epochs, "seeds": seeds,
                   "train_cpu_h": cpu_train / 3600, "train_gpu_h": gpu_train / 3600}
            print(f"{name}-{fw}: train {per_sample * 1e3:.2f} ms/sample on this CPU "
                  f"({row['cpu_gflops']:.1f} GFLOP/s), {flops / 1e6:.1f} MFLOP forward; paper "
                  f"({n_train} x {hp.epochs} epochs x {seeds} seeds): CPU "
                  f"{row['train_cpu_h']:.1f} h, GPU {row['train_gpu_h']:.2f} h", flush=True)
            attack_cpu = attack_gpu = 0.0
            for attack in attacks.attacks_for(spec):
                params = paper.attack(attack)
                full_n = params["n_samples"]
                if attack == "boundary":
                    small, scale = {"max_iter": args.boundary_iters}, (
                        params["max_iter"] / args.boundary_iters)
                    n = args.boundary_samples
                elif attack == "genetic":
                    small, scale = {"generations": args.genetic_generations}, (
                        params["generations"] / args.genetic_generations)
                    n = args.genetic_samples
                else:
                    small, scale, n = {}, 1.0, args.fgsm_samples
                base = {k: v for k, v in params.items() if k != "n_samples"}
                secs, calls, qrows = time_attack(bench, spec, fw, model, attack, base | small, n)
                cpu = secs * scale * full_n * seeds
                if attack == "fgsm":  # one gradient (3 forward passes' FLOPs) per sample
                    gpu = max(args.gpu_query_ms / 1e3 / 64,
                              3 * flops / (args.gpu_tflops * 1e12)) * full_n * seeds
                else:
                    per_query = max(args.gpu_query_ms / 1e3, step_floor / 3,
                                    qrows / calls * flops / (args.gpu_tflops * 1e12))
                    gpu = per_query * calls * scale * full_n * seeds
                attack_cpu += cpu
                attack_gpu += gpu
                row[attack] = {"s_per_sample_cpu": secs, "queries_per_sample": calls,
                               "rows_per_query": qrows / calls if calls else 0,
                               "measured_at": small, "scale": scale,
                               "cpu_h": cpu / 3600, "gpu_h": gpu / 3600}
                at = small or "paper size"
                print(f"  {attack}: {secs:.2f} s/sample, {calls:.0f} queries/sample at {at}"
                      f"; paper ({full_n} samples x {seeds} seeds, x{scale:.0f}): CPU "
                      f"{cpu / 3600:.1f} h, GPU {gpu / 3600:.2f} h", flush=True)
            totals["cpu"] += cpu_train + attack_cpu
            totals["gpu"] += gpu_train + attack_gpu
            rows.append(row)
    print(f"paper profile, training and attacks of {len(rows)} originals x {seeds} seeds: "
          f"this CPU {totals['cpu'] / 3600:.0f} h; one GPU (modelled) {totals['gpu'] / 3600:.1f} h")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "totals_h": {
            k: v / 3600 for k, v in totals.items()}, "args": vars(args) | {"json": str(args.json)}},
            indent=1))


if __name__ == "__main__":
    main()
