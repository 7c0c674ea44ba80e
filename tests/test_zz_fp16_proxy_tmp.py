import copy, numpy as np, torch
from convcheck import metrics
def test_proxy(bench):
    for m in ("lenet5", "vgg16", "resnet18", "lstm", "gru"):
        o = bench.original(m, "pytorch", bench.profile.seeds[0])
        x, _ = bench.test_set(o.spec, "pytorch")
        ref = bench.outputs(o)
        half = copy.deepcopy(o.predictor.model).half().eval()
        outs = []
        with torch.no_grad():
            for i in range(0, len(x), 100):
                xb = torch.from_numpy(np.asarray(x[i:i+100]))
                xb = xb.half() if xb.is_floating_point() else xb
                y = half(xb).float()
                outs.append(y.numpy())
        got = np.concatenate(outs)
        if not np.allclose(got.sum(1), 1, atol=1e-2):
            got = torch.softmax(torch.from_numpy(got), 1).numpy()
        e = metrics.output_errors(ref, got, atol=0.5, rtol=0.05, rel_floor=1e-6)
        print(f"FP16PROXY {m}: k={ref.shape[1]} abs_max {e.abs_max:.3g} abs_p99 {e.abs_p99:.3g} abs_mean {e.abs_mean:.3g} rel_max {e.rel_max:.3g} rel_mean {e.rel_mean:.3g} flips {metrics.label_disagreement(ref, got)[1].size}")
