"""Adversarial attacks made on an original and replayed on its conversions: ART's FGSM and
Boundary for image classifiers (convcheck.robustness.attacks) and the genetic word-substitution
attack for text classifiers (convcheck.robustness.genetic)."""
