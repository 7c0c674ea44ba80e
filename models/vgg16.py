"""VGG-16 with batch norm, CIFAR variant (32x32x3), in PyTorch and Keras, layer for layer.

13 convs 3x3 same (with bias) + BN + ReLU, with maxpool 2 after each block (CFG) -> flatten (512)
-> Dropout(0.5) -> dense 512 ReLU -> Dropout(0.5) -> dense 512 ReLU -> dense 10 -> softmax.
15,253,578 trainable parameters: 14,719,818 convs, 8,448 BN (gamma/beta), 525,312 + 5,130 dense.

Keras layer names are the torch module paths with "." replaced by "_" ("features_0", "fc1", ...).
Batch norm: Keras uses epsilon=1e-5, momentum=0.9, i.e. torch's eps=1e-5, momentum=0.1.
"""
from __future__ import annotations

CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
BN_EPS, KERAS_BN_MOMENTUM = 1e-5, 0.9
DROPOUT = 0.5


def build_torch(spec):
    import torch
    from torch import nn

    class VGG16BN(nn.Module):
        def __init__(self, num_classes: int):
            super().__init__()
            feats, in_ch = [], spec.input_shape[-1]
            for v in CFG:
                if v == "M":
                    feats.append(nn.MaxPool2d(2))
                else:
                    feats += [nn.Conv2d(in_ch, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                    in_ch = v
            self.features = nn.Sequential(*feats)
            self.relu = nn.ReLU()
            self.drop1 = nn.Dropout(DROPOUT)
            self.fc1 = nn.Linear(512, 512)
            self.drop2 = nn.Dropout(DROPOUT)
            self.fc2 = nn.Linear(512, 512)
            self.fc3 = nn.Linear(512, num_classes)

        def logits(self, x):
            x = torch.flatten(self.features(x), 1)  # (N, 512): spatial size is 1x1 here
            x = self.relu(self.fc1(self.drop1(x)))
            x = self.relu(self.fc2(self.drop2(x)))
            return self.fc3(x)

        def forward(self, x):
            return torch.softmax(self.logits(x), dim=1)

    return VGG16BN(spec.num_classes)


def build_keras(spec):
    import keras
    from keras import layers

    inputs = keras.Input(shape=spec.input_shape, dtype="float32", name="input")
    x, i = inputs, 0  # i: index of the matching module in torch's `features` Sequential
    for v in CFG:
        if v == "M":
            x = layers.MaxPooling2D(2, name=f"features_{i}")(x)
            i += 1
        else:
            x = layers.Conv2D(v, 3, padding="same", name=f"features_{i}")(x)
            x = layers.BatchNormalization(epsilon=BN_EPS, momentum=KERAS_BN_MOMENTUM,
                                          name=f"features_{i + 1}")(x)
            x = layers.ReLU(name=f"features_{i + 2}")(x)
            i += 3
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(DROPOUT, name="drop1")(x)
    x = layers.Dense(512, activation="relu", name="fc1")(x)
    x = layers.Dropout(DROPOUT, name="drop2")(x)
    x = layers.Dense(512, activation="relu", name="fc2")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="fc3")(x)
    return keras.Model(inputs, outputs, name=spec.name)
