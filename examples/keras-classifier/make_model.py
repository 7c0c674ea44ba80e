"""How this project's files were made (run once; the files are what the team ships):
a small Keras CNN classifying scikit-learn's 8x8 digits (NHWC images in [0, 1]), saved both in
Keras' own format (model.keras) and in the legacy HDF5 format (model.h5), and the held-out
images (x) with their labels (y) in data.npz."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

keras.utils.set_random_seed(0)
d = load_digits()
x = (d.images / 16.0).astype(np.float32)[..., None]  # N, 8, 8, 1
y = d.target.astype(np.int64)
order = np.random.default_rng(1).permutation(len(x))
x, y = x[order], y[order]
x_train, y_train, x_eval, y_eval = x[:-300], y[:-300], x[-300:], y[-300:]

model = keras.Sequential([
    keras.Input((8, 8, 1)),
    keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
print("eval accuracy", model.evaluate(x_eval, y_eval, verbose=0)[1])
model.save("model.keras")
model.save("model.h5")
np.savez_compressed("data.npz", x=x_eval, y=y_eval)
