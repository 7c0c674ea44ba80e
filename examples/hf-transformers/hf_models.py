"""Real architectures nobody on this team wrote: Hugging Face `transformers` model classes, built
offline from tiny configs with seeded weights (no download), wrapped to take what the team's
service feeds them (right-padded token ids; NCHW images in [0, 1]) and to return class
probabilities. The evaluation data has no labels: it is what the service receives."""
from __future__ import annotations

import numpy as np

VOCAB, SEQ, PAD = 1000, 32, 0
IMAGE = (3, 32, 32)


def _seeded(config_cls, model_cls, **config):
    import torch

    torch.manual_seed(0)
    return model_cls(config_cls(**config)).eval()


def _token_inputs(ids):
    """Right-padded ids: attend to the words only."""
    return {"input_ids": ids, "attention_mask": (ids != PAD).long()}


def _image_inputs(pixels):
    """[0, 1] pixels, as the image processors' [-1, 1] normalisation would give them."""
    return {"pixel_values": pixels * 2.0 - 1.0}


def _classifier(model, inputs):
    """The model fed what the service sends (inputs(x): its keyword arguments), returning
    class probabilities."""
    import torch
    from torch import nn

    class Classifier(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return torch.softmax(self.inner(**inputs(x)).logits, dim=-1)

    return Classifier(model).eval()


def bert():
    from transformers import BertConfig, BertForSequenceClassification

    return _classifier(_seeded(
        BertConfig, BertForSequenceClassification, vocab_size=VOCAB, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=SEQ, num_labels=3, pad_token_id=PAD), _token_inputs)


def gpt2():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    return _classifier(_seeded(
        GPT2Config, GPT2ForSequenceClassification, vocab_size=VOCAB, n_embd=32, n_layer=2,
        n_head=2, n_positions=SEQ, num_labels=3, pad_token_id=PAD), _token_inputs)


def vit():
    from transformers import ViTConfig, ViTForImageClassification

    return _classifier(_seeded(
        ViTConfig, ViTForImageClassification, image_size=32, patch_size=8, num_channels=3,
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        num_labels=5), _image_inputs)


def tokens():
    """Right-padded id sequences of 4..32 words from the 1,000-word vocabulary (ids 2..999;
    0 pads, 1 is out-of-vocabulary), Zipf-like like real text."""
    rng = np.random.default_rng(1)
    x = np.full((64, SEQ), PAD, dtype=np.int64)
    for row, n in zip(x, rng.integers(4, SEQ + 1, len(x))):
        row[:n] = np.minimum(2 + rng.zipf(1.3, n), VOCAB - 1)
    return {"x": x}


def images():
    """Smooth random colour fields in [0, 1] (NCHW), like photographs at 32x32 more than noise."""
    rng = np.random.default_rng(2)
    coarse = rng.random((48, 3, 4, 4))
    x = coarse.repeat(8, axis=2).repeat(8, axis=3) * 0.8 + 0.2 * rng.random((48, *IMAGE))
    return {"x": np.clip(x, 0.0, 1.0).astype(np.float32)}
