"""LeNet-5 for MNIST (28x28x1), in PyTorch and Keras, layer for layer.

conv 6@5x5 same + ReLU + maxpool 2 -> conv 16@5x5 valid + ReLU + maxpool 2 -> flatten (400)
-> dense 120 ReLU -> dense 84 ReLU -> dense 10 -> softmax.  61,706 trainable parameters.

Keras layer names are the torch module names ("conv1", "fc1", ...), so weights can be matched by
name. One layout difference: torch flattens (C, H, W), Keras flattens (H, W, C), so fc1's input
features come in a different order (the layers are otherwise identical).
"""
from __future__ import annotations


def build_torch(spec):
    import torch
    from torch import nn

    class LeNet5(nn.Module):
        def __init__(self, num_classes: int):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
            self.pool = nn.MaxPool2d(2)
            self.relu = nn.ReLU()
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, num_classes)

        def logits(self, x):
            x = self.pool(self.relu(self.conv1(x)))  # (N, 6, 14, 14)
            x = self.pool(self.relu(self.conv2(x)))  # (N, 16, 5, 5)
            x = torch.flatten(x, 1)  # (N, 400)
            x = self.relu(self.fc1(x))
            x = self.relu(self.fc2(x))
            return self.fc3(x)

        def forward(self, x):
            return torch.softmax(self.logits(x), dim=1)

    return LeNet5(spec.num_classes)


def build_keras(spec):
    import keras
    from keras import layers

    inputs = keras.Input(shape=spec.input_shape, dtype="float32", name="input")
    x = layers.Conv2D(6, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, padding="valid", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation="relu", name="fc1")(x)
    x = layers.Dense(84, activation="relu", name="fc2")(x)
    outputs = layers.Dense(spec.num_classes, activation="softmax", name="fc3")(x)
    return keras.Model(inputs, outputs, name=spec.name)
