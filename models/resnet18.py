"""ResNet-18, CIFAR variant (32x32x3), in PyTorch and Keras, layer for layer.

conv3x3 64 stride 1 (no bias) + BN + ReLU (no maxpool) -> 4 stages of 2 BasicBlocks
(64/128/256/512 channels, strides 1/2/2/2, projection shortcut 1x1 conv + BN where the shape
changes) -> global average pool -> dense 10 -> softmax.  11,173,962 trainable parameters.

Keras layer names are the torch module paths with "." replaced by "_" ("layer2_0_conv1", ...).
Strided 3x3 convs: torch pads 1 pixel on every side; Keras' padding="same" with stride 2 pads
only bottom/right on even inputs, which samples different windows. So the Keras model uses an
explicit ZeroPadding2D(1) + padding="valid" there, and the two frameworks compute the same thing.
Batch norm: Keras uses epsilon=1e-5, momentum=0.9, i.e. torch's eps=1e-5, momentum=0.1.
"""
from __future__ import annotations

STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block)
BLOCKS_PER_STAGE = 2
BN_EPS, KERAS_BN_MOMENTUM = 1e-5, 0.9


def build_torch(spec):
    import torch
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, in_ch: int, out_ch: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_ch)
            self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_ch)
            self.relu = nn.ReLU()
            self.shortcut = nn.Sequential()
            if stride != 1 or in_ch != out_ch:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_ch),
                )

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.shortcut(x))

    class ResNet18(nn.Module):
        def __init__(self, num_classes: int):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            in_ch = 64
            for i, (ch, stride) in enumerate(STAGES, start=1):
                blocks = []
                for b in range(BLOCKS_PER_STAGE):
                    blocks.append(BasicBlock(in_ch, ch, stride if b == 0 else 1))
                    in_ch = ch
                setattr(self, f"layer{i}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def logits(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

        def forward(self, x):
            return torch.softmax(self.logits(x), dim=1)

    return ResNet18(spec.num_classes)


def build_keras(spec):
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, name, conv_name="conv", bn_name="bn"):
        """Conv (no bias) + BN, padded like torch: k//2 pixels on every side."""
        pad = kernel // 2
        if stride == 1:
            padding = "same"  # symmetric for odd kernels and stride 1: identical to torch
        else:
            padding = "valid"
            if pad:
                x = layers.ZeroPadding2D(pad, name=f"{name}_pad{conv_name[-1]}")(x)
        x = layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                          name=f"{name}_{conv_name}")(x)
        return layers.BatchNormalization(epsilon=BN_EPS, momentum=KERAS_BN_MOMENTUM,
                                         name=f"{name}_{bn_name}")(x)

    def basic_block(x, filters, stride, name):
        out = conv_bn(x, filters, 3, stride, name, "conv1", "bn1")
        out = layers.ReLU(name=f"{name}_relu1")(out)
        out = conv_bn(out, filters, 3, 1, name, "conv2", "bn2")
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = conv_bn(x, filters, 1, stride, name, "shortcut_0", "shortcut_1")
        out = layers.Add(name=f"{name}_add")([out, shortcut])
        return layers.ReLU(name=f"{name}_relu2")(out)

    inputs = keras.Input(shape=spec.input_shape, dtype="float32", name="input")
    x = layers.Conv2D(64, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(epsilon=BN_EPS, momentum=KERAS_BN_MOMENTUM, name="bn1")(x)
    x = layers.ReLU(name="relu")(x)
    for i, (ch, stride) in enumerate(STAGES, start=1):
        for b in range(BLOCKS_PER_STAGE):
            x = basic_block(x, ch, stride if b == 0 else 1, f"layer{i}_{b}")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="fc")(x)
    return keras.Model(inputs, outputs, name=spec.name)
