"""Hypothesis strategies over a model's declared input domain (no pytest here).

A strategy draws a *recipe* per sample: a small frozen dataclass (kind + a few numbers) that
`render` turns into pixels or token ids, deterministically. Recipes keep Hypothesis' output
readable (a falsifying example prints as ``[Image(kind='black')]``, not as a 6,000-element
array), make every example reproducible from its repr alone, and shrink well: Hypothesis shrinks
a batch towards one sample, a kind towards the first (simplest) kind, numbers towards 0 and
seeds towards 0.

Images (canonical HWC layout, float32, every pixel in [0, 1]): saturated (all 0 / all 1),
constant, sparse (a few pixels on a black background), coarse (a 4x4 grid of free pixel values,
so Hypothesis itself chooses and shrinks pixel values), noise (uniform in a drawn range),
patches (rectangles of constant value on a background) and mixture (each pixel 0, 1 or noise,
in drawn proportions). A batch mixes kinds freely.

Images are drawn in [0, 1] and scaled to the declared input.range.

Token sequences (integer ids, the declared length and vocabulary, a TokenDomain): every length
1..length (0 too where the model declares input.empty), padded with the declared pad_id on the
declared side (input.padding, or the side its data shows), the body made of the declared oov_id
only, one repeated id, the extreme ids, ids Hypothesis picks one by one (any id < vocab_size, the
pad id included), or seeded random word ids.

Features (any other input with a declared range): every element at the low or the high end,
one constant, uniform noise in a drawn sub-range, or a few elements Hypothesis picks itself on
a constant background.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from convcheck.data import MAX_LEN, OOV_ID, PAD_ID, VOCAB_SIZE
from convcheck.declarations.spec import ModelSpec

GRID = 4  # coarse images: GRID x GRID cells per channel (28 and 32 are multiples of 4)
SEEDS = st.integers(0, 2**16 - 1)
PIXELS = st.floats(0.0, 1.0, width=32)  # exactly representable in float32

# Simplest first: Hypothesis shrinks a sampled kind towards the start of the tuple.
IMAGE_KINDS = ("black", "white", "constant", "sparse", "coarse", "noise", "patches", "mixture")
TOKEN_KINDS = ("oov", "repeat", "extremes", "chosen", "random")
FEATURE_KINDS = ("low", "high", "constant", "noise", "spikes")


@dataclass(frozen=True)
class TokenDomain:
    """The token sequences a model takes: length, vocabulary, its padding and out-of-vocabulary
    ids, the side padding goes and whether a sequence of padding only is valid. The defaults are
    the IMDb tokenizer's (convcheck.data)."""
    max_len: int = MAX_LEN
    vocab_size: int = VOCAB_SIZE
    pad_id: int = PAD_ID
    oov_id: int = OOV_ID
    padding: str = "pre"
    empty: bool = True

    @property
    def words(self) -> np.ndarray:
        """The word ids: every id but the padding and out-of-vocabulary ones."""
        ids = np.arange(self.vocab_size)
        return ids[(ids != self.pad_id) & (ids != self.oov_id)]

    @property
    def extreme_ids(self) -> tuple[int, int, int]:
        """Ids a body of kind "extremes" is made of: OOV, the smallest and the largest word id."""
        w = self.words
        return (self.oov_id, int(w[0]), int(w[-1]))

    @classmethod
    def of(cls, spec: ModelSpec, padding: str | None = None) -> "TokenDomain":
        """`spec`'s domain; padding: the side its data shows, where it declares none."""
        i = spec.input
        return cls(spec.input_shape[0], i.vocab_size, i.pad_id, i.oov_id,
                   i.padding or padding or "pre", i.empty)


@dataclass(frozen=True)
class Image:
    """One image; fields a kind does not use keep their defaults (and are left out of repr)."""

    kind: str
    value: float = 0.0  # constant / sparse pixel value / patches background
    low: float = 0.0  # noise range; mixture: share of 0-pixels
    high: float = 1.0  # noise range; mixture: share of 1-pixels
    density: float = 0.0  # sparse: share of lit pixels
    count: int = 0  # patches: number of rectangles
    grid: tuple[float, ...] = ()  # coarse: GRID*GRID*channels cell values
    seed: int = 0

    def __repr__(self) -> str:
        used = {"black": (), "white": (), "constant": ("value",),
                "sparse": ("value", "density", "seed"), "coarse": ("grid",),
                "noise": ("low", "high", "seed"), "patches": ("value", "count", "seed"),
                "mixture": ("low", "high", "seed")}[self.kind]
        args = "".join(f", {k}={getattr(self, k)!r}" for k in used)
        return f"Image(kind={self.kind!r}{args})"

    def _repr_pretty_(self, p, cycle) -> None:  # Hypothesis' reports print the short repr too
        p.text(repr(self))


@dataclass(frozen=True)
class Tokens:
    """One token sequence: `length` body tokens, padded to the domain's length."""

    kind: str
    length: int = 0
    token: int = OOV_ID  # repeat: the repeated id
    ids: tuple[int, ...] = ()  # chosen: the body itself (length is set to len(ids))
    seed: int = 0

    def __repr__(self) -> str:
        used = {"oov": ("length",), "repeat": ("length", "token"), "extremes": ("length", "seed"),
                "chosen": ("ids",), "random": ("length", "seed")}[self.kind]
        args = "".join(f", {k}={getattr(self, k)!r}" for k in used)
        return f"Tokens(kind={self.kind!r}{args})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def __post_init__(self):
        if self.kind == "chosen":  # the body is the ids themselves
            object.__setattr__(self, "length", len(self.ids))


@dataclass(frozen=True)
class Features:
    """One sample of a numeric input, in units of its range: 0 is the low end, 1 the high."""

    kind: str
    value: float = 0.0  # constant / spikes background
    low: float = 0.0  # noise range
    high: float = 1.0
    spikes: tuple[tuple[int, float], ...] = ()  # (flat index, value) set on the background
    seed: int = 0

    def __repr__(self) -> str:
        used = {"low": (), "high": (), "constant": ("value",), "noise": ("low", "high", "seed"),
                "spikes": ("value", "spikes")}[self.kind]
        args = "".join(f", {k}={getattr(self, k)!r}" for k in used)
        return f"Features(kind={self.kind!r}{args})"

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


# --------------------------------------------------------------------------- strategies


@st.composite
def feature_recipes(draw, size: int) -> Features:
    kind = draw(st.sampled_from(FEATURE_KINDS))
    if kind in ("low", "high"):
        return Features(kind)
    if kind == "constant":
        return Features(kind, value=draw(PIXELS))
    if kind == "noise":
        a, b = sorted((draw(PIXELS), draw(PIXELS)))
        return Features(kind, low=a, high=b, seed=draw(SEEDS))
    spikes = draw(st.lists(st.tuples(st.integers(0, size - 1), PIXELS), min_size=1,
                           max_size=min(size, 8)))
    return Features(kind, value=draw(PIXELS), spikes=tuple(spikes))


@st.composite
def image_recipes(draw, channels: int = 1) -> Image:
    kind = draw(st.sampled_from(IMAGE_KINDS))
    if kind in ("black", "white"):
        return Image(kind)
    if kind == "constant":
        return Image(kind, value=draw(PIXELS))
    if kind == "sparse":
        return Image(kind, value=draw(PIXELS), density=draw(st.floats(0.0, 0.2)),
                     seed=draw(SEEDS))
    if kind == "coarse":
        cells = GRID * GRID * channels
        return Image(kind, grid=tuple(draw(st.lists(PIXELS, min_size=cells, max_size=cells))))
    if kind in ("noise", "mixture"):
        a, b = sorted((draw(PIXELS), draw(PIXELS)))
        if kind == "mixture":  # shares of 0- and 1-pixels; the rest is noise
            a, b = a, b - a
        return Image(kind, low=a, high=b, seed=draw(SEEDS))
    # patches
    return Image(kind, value=draw(PIXELS), count=draw(st.integers(1, 6)), seed=draw(SEEDS))


@st.composite
def token_recipes(draw, domain: TokenDomain = TokenDomain()) -> Tokens:
    kind = draw(st.sampled_from(TOKEN_KINDS))
    shortest = 0 if domain.empty else 1
    if kind == "chosen":
        ids = draw(st.lists(st.integers(0, domain.vocab_size - 1), min_size=shortest,
                            max_size=domain.max_len)
                   # padding only is an empty sequence: drawn only where declared valid
                   .filter(lambda ids: domain.empty or any(i != domain.pad_id for i in ids)))
        return Tokens(kind, ids=tuple(ids))
    # The boundary lengths (shortest, one token, no padding at all) as likely as any other.
    length = draw(st.one_of(st.sampled_from(tuple(dict.fromkeys((shortest, 1, domain.max_len)))),
                            st.integers(shortest, domain.max_len)))
    if kind == "oov":
        return Tokens(kind, length=length)
    if kind == "repeat":  # any id but padding
        token = draw(st.sampled_from([domain.oov_id, *domain.words.tolist()]))
        return Tokens(kind, length=length, token=token)
    return Tokens(kind, length=length, seed=draw(SEEDS))


def why_not(spec: ModelSpec) -> str | None:
    """Why no strategy can draw valid inputs for `spec` (None: one can)."""
    if spec.kind == "tokens":
        if spec.input.vocab_size is None or len(spec.input.shape) != 1:
            return ("token inputs are drawn from a vocabulary: declare input.vocab_size "
                    "(and a 1-d input.shape)")
        return None
    if spec.input.range is None:
        return ("valid inputs are drawn from the declared value range: declare input.range "
                "(no range, no domain to search)")
    if spec.input.dtype.startswith("int"):
        return f"integer {spec.input.layout} inputs have no strategy (only token ids do)"
    return None


def _channels(spec: ModelSpec) -> int:
    return spec.input_shape[-1] if spec.input.layout == "nhwc" else spec.input_shape[0]


def sample_recipes(spec: ModelSpec, padding: str | None = None):
    """One sample of `spec`'s input domain, as a recipe (padding: see TokenDomain.of)."""
    reason = why_not(spec)
    if reason:
        raise ValueError(f"{spec.name}: {reason}")
    if spec.kind == "image":
        return image_recipes(channels=_channels(spec))
    if spec.kind == "tokens":
        return token_recipes(TokenDomain.of(spec, padding))
    return feature_recipes(size=int(np.prod(spec.input_shape)))


def edge_batches(spec: ModelSpec) -> list[list]:
    """Batches every property run checks first, whatever the search draws: for images the
    blank and saturated ones and three constant greys, where quantized and reduced-precision
    models break (one image each, so a failure is already minimal); none for other inputs."""
    if spec.kind != "image":
        return []
    return [[Image("black")], [Image("white")],
            *([Image("constant", value=v)] for v in (0.25, 0.5, 0.75))]


def batches(spec: ModelSpec, max_batch: int, padding: str | None = None):
    """A batch of 1..max_batch recipes (kinds mixed freely)."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    return st.lists(sample_recipes(spec, padding), min_size=1, max_size=max_batch)


# --------------------------------------------------------------------------- rendering


def render_image(r: Image, shape: tuple[int, int, int]) -> np.ndarray:
    """An (H, W, C) float32 image in [0, 1]."""
    h, w, c = shape
    rng = np.random.default_rng(r.seed)
    if r.kind == "black":
        x = np.zeros(shape)
    elif r.kind == "white":
        x = np.ones(shape)
    elif r.kind == "constant":
        x = np.full(shape, r.value)
    elif r.kind == "sparse":
        x = np.where(rng.random(shape) < r.density, r.value, 0.0)
    elif r.kind == "coarse":
        cells = np.asarray(r.grid, dtype=np.float64).reshape(GRID, GRID, c)
        x = cells[np.arange(h) * GRID // h][:, np.arange(w) * GRID // w]
    elif r.kind == "noise":
        x = rng.uniform(r.low, r.high, shape)
    elif r.kind == "patches":
        x = np.full(shape, r.value)
        for _ in range(r.count):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = y0 + rng.integers(1, h - y0 + 1), x0 + rng.integers(1, w - x0 + 1)
            x[y0:y1, x0:x1] = rng.random(c)
    elif r.kind == "mixture":
        u = rng.random(shape)
        x = np.where(u < r.low, 0.0, np.where(u < r.low + r.high, 1.0, rng.random(shape)))
    else:
        raise ValueError(f"unknown image kind {r.kind!r}; valid: {', '.join(IMAGE_KINDS)}")
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def render_tokens(r: Tokens, domain: TokenDomain = TokenDomain()) -> np.ndarray:
    """A (max_len,) int64 id sequence: the body, padded with pad_id on the domain's side."""
    rng = np.random.default_rng(r.seed)
    n, max_len = r.length, domain.max_len
    if r.kind == "oov":
        body = np.full(n, domain.oov_id)
    elif r.kind == "repeat":
        body = np.full(n, r.token)
    elif r.kind == "extremes":
        body = rng.choice(domain.extreme_ids, n)
    elif r.kind == "chosen":
        body = np.asarray(r.ids, dtype=np.int64)
    elif r.kind == "random":
        body = rng.choice(domain.words, n)
    else:
        raise ValueError(f"unknown token kind {r.kind!r}; valid: {', '.join(TOKEN_KINDS)}")
    if not 0 <= len(body) <= max_len:
        raise ValueError(f"{r!r}: body length {len(body)} outside 0..{max_len}")
    if len(body) and (body >= domain.vocab_size).any():
        raise ValueError(f"{r!r}: id {int(body.max())} outside the vocabulary "
                         f"0..{domain.vocab_size - 1}")
    out = np.full(max_len, domain.pad_id, dtype=np.int64)
    if len(body):
        if domain.padding == "pre":
            out[max_len - len(body):] = body
        else:
            out[:len(body)] = body
    return out


def render_features(r: Features, shape: tuple[int, ...]) -> np.ndarray:
    """A sample in [0, 1] (units of the declared range)."""
    if r.kind == "low":
        x = np.zeros(shape)
    elif r.kind == "high":
        x = np.ones(shape)
    elif r.kind == "constant":
        x = np.full(shape, r.value)
    elif r.kind == "noise":
        x = np.random.default_rng(r.seed).uniform(r.low, r.high, shape)
    elif r.kind == "spikes":
        x = np.full(int(np.prod(shape)), r.value)
        for i, v in r.spikes:
            x[i] = v
        x = x.reshape(shape)
    else:
        raise ValueError(f"unknown feature kind {r.kind!r}; valid: {', '.join(FEATURE_KINDS)}")
    return x


def render(recipes, spec: ModelSpec, framework: str, padding: str | None = None) -> np.ndarray:
    """A batch in `framework`'s input layout and spec.input_dtype (padding: TokenDomain.of)."""
    if spec.kind == "tokens":
        domain = TokenDomain.of(spec, padding)
        x = np.stack([render_tokens(r, domain) for r in recipes])
        return spec.to_framework_layout(x.astype(spec.input_dtype, copy=False), framework)
    if spec.kind == "image":
        shape = spec.input_shape
        hwc = shape if spec.input.layout == "nhwc" else (shape[1], shape[2], shape[0])
        x = np.stack([render_image(r, hwc) for r in recipes]).astype(np.float64)
        if spec.input.layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
    else:
        x = np.stack([render_features(r, spec.input_shape) for r in recipes])
    lo, hi = spec.input.range
    x = np.clip(lo + x * (hi - lo), lo, hi)
    return spec.to_framework_layout(x.astype(spec.input_dtype), framework)
