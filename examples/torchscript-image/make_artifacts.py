"""How this project's files were made (run once; the files are what the team ships):
net.pt, a MobileNet-style CNN (depthwise-separable convolutions, BatchNorm, ReLU6) on
scikit-learn's 8x8 digits as 1x8x8 NCHW images in [0, 1], saved as TorchScript; net.pt2, the
same network as a torch.export program; net.onnx, the ONNX file deployed from it; data.npz,
held-out images (x) and their labels (y)."""
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

torch.manual_seed(0)
d = load_digits()
x = (d.images / 16.0).astype(np.float32)[:, None]  # N, 1, 8, 8
y = d.target.astype(np.int64)
order = np.random.default_rng(1).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train, x_eval, y_eval = x[:-300], y[:-300], x[-300:], y[-300:]


def separable(cin, cout, stride):
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6())


model = nn.Sequential(
    nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(),
    separable(16, 32, 1), separable(32, 64, 2), separable(64, 64, 1),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
for epoch in range(8):
    model.train()
    for i in range(0, len(xt), 64):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(xt[i:i + 64]) + 1e-9), yt[i:i + 64])
        loss.backward()
        opt.step()
model.eval()
with torch.no_grad():
    print("eval accuracy", float((model(torch.from_numpy(x_eval)).argmax(1).numpy() == y_eval).mean()))

example = torch.from_numpy(x_eval[:2])
torch.jit.trace(model, example).save("net.pt")
torch.export.save(torch.export.export(model, (example,), dynamic_shapes={
    "input": {0: torch.export.Dim("batch", min=1, max=1024)}}), "net.pt2")
torch.onnx.export(model, (example,), "net.onnx", dynamo=True, input_names=["images"],
                  output_names=["probabilities"], dynamic_shapes={"input": {0: "batch"}},
                  external_data=False)
np.savez_compressed("data.npz", x=x_eval, y=y_eval)
