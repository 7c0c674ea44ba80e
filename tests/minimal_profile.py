"""The text of a minimal valid profile (profiles.toml), for tests that break one part of it."""
from models import ZOO

ATTACK_TABLES = [
    "attack.fgsm = { n_samples = 4, eps = { mnist = 0.1, cifar10 = 0.01 } }",
    "attack.boundary = { n_samples = 2, max_iter = 3, num_trial = 2, sample_size = 2, "
    "delta = 0.01, epsilon = 0.01 }",
    "attack.genetic = { n_samples = 2, population = 4, generations = 2, neighbours = 4, "
    "max_modification = 0.25, min_words = 10, max_words = 100 }",
]


def minimal_profile(name: str = "p", *, seeds: str = "[0, 1]", lines: tuple = (),
                    mnist: str = "{ n_train = 10, n_test = 5 }", lr: float = 0.05,
                    batch_size: int = 64) -> str:
    out = [f"[{name}]", 'description = "test"', f"seeds = {seeds}", *lines,
           f"data.mnist = {mnist}", "data.cifar10 = {}", "data.imdb = {}"]
    out += [f'train.{m} = {{ optimizer = "sgd", lr = {lr}, batch_size = {batch_size}, epochs = 1 }}'
            for m in ZOO]
    return "\n".join(out + ATTACK_TABLES) + "\n"
