"""How model.keras was made (run once; the file is what this project ships): a Keras MLP
regressing scikit-learn's diabetes progression from its 10 standardised features."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
from diabetes import load

keras.utils.set_random_seed(0)
d = load()
model = keras.Sequential([keras.Input((10,), name="features"),
                          keras.layers.Dense(32, activation="relu"),
                          keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(1, name="progression")])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
model.fit(d["x_train"], d["y_train"], epochs=200, batch_size=32, verbose=0)
print("test MSE", float(np.mean((model.predict(d["x"], verbose=0)[:, 0] - d["y"]) ** 2)))
shipped = keras.models.clone_model(model)  # the weights alone, without the optimizer's state
shipped.set_weights(model.get_weights())
shipped.save("model.keras")
