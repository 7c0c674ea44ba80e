"""How this project's files were made (run once; the files are what the team ships):
model.pt, a TorchScript MLP classifying scikit-learn's 8x8 digits from their 64 pixel values;
model.onnx, the ONNX file deployed from it; data.npz, the evaluation samples (x) and labels (y)."""
import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

torch.manual_seed(0)
d = load_digits()
x = (d.data / 16.0).astype(np.float32)
y = d.target.astype(np.int64)
order = np.random.default_rng(1).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train, x_eval, y_eval = x[:-300], y[:-300], x[-300:], y[-300:]

model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
for epoch in range(60):
    opt.zero_grad()
    loss = nn.functional.nll_loss(torch.log(model(xt)), yt)
    loss.backward()
    opt.step()
model.eval()
print("eval accuracy", float((model(torch.from_numpy(x_eval)).argmax(1).numpy() == y_eval).mean()))

torch.jit.trace(model, torch.from_numpy(x_eval[:2])).save("model.pt")
torch.onnx.export(model, (torch.from_numpy(x_eval[:2]),), "model.onnx", dynamo=True,
                  input_names=["pixels"], output_names=["probabilities"],
                  dynamic_shapes={"input": {0: "batch"}}, external_data=False)
np.savez_compressed("data.npz", x=x_eval, y=y_eval)
