"""Known silent divergences between a framework and its ONNX conversion, as minimal reproducers:
the harness (convcheck.regressions.harness: what a reproducer measures and how it is judged) and
the reproducers by topic (recurrent layers, training mode, resampling, half precision), listed in
REGRESSIONS. The test that runs them is convcheck.suite.regressions."""
from __future__ import annotations

from convcheck.regressions.harness import SEED, Measured, Regression, compare, verdict
from convcheck.regressions.precision import fp16_activations
from convcheck.regressions.recurrent import (
                                             gru_linear_before_reset,
                                             keras_mask_as_sequence_lens,
                                             keras_mask_zero,
                                             torch_lstm,
)
from convcheck.regressions.resampling import (
                                             avg_pool_ceil,
                                             bilinear,
                                             keras_resizing_inexact_scale,
                                             keras_upsampling_bilinear,
)
from convcheck.regressions.training_mode import train_mode

__all__ = ["REGRESSIONS", "SEED", "Measured", "Regression", "compare", "verdict"]

_TORCH = ("dynamo", "torchscript")
REGRESSIONS: tuple[Regression, ...] = (
    *(Regression("gru-linear-before-reset", "pytorch", e,
                 "nn.GRU needs ONNX GRU linear_before_reset=1; exported with 0 its outputs "
                 "differ by about 0.1",
                 "pytorch and onnxscript trackers: the dynamo exporter's aten GRU translation "
                 "left linear_before_reset unset (torch 2.10, onnxscript 0.6)",
                 gru_linear_before_reset(e)) for e in _TORCH),
    *(Regression("lstm-zero-padded", "pytorch", e,
                 "a pre-padded batch without packing: pad steps run through the cell in torch "
                 "and in the export alike (the zoo's LSTM/GRU)",
                 "the padded-sequence question behind the masking cases below",
                 torch_lstm("padded", e)) for e in _TORCH),
    *(Regression("lstm-packed-sequence", "pytorch", e,
                 "pack_padded_sequence + pad_packed_sequence: torch zero-fills the outputs past "
                 "each length, so does onnxruntime's LSTM with sequence_lens",
                 "pytorch tracker: RNNs with packed sequences fail to export with "
                 "torch.export / the dynamo exporter",
                 torch_lstm("packed-sequence", e)) for e in _TORCH),
    *(Regression("lstm-packed-final-state", "pytorch", e,
                 "the final hidden state of a packed LSTM (the usual classifier head)",
                 "pytorch tracker: RNNs with packed sequences fail to export",
                 torch_lstm("packed-final-state", e)) for e in _TORCH),
    Regression("keras-lstm-mask-zero-prepadded", "keras", "tf2onnx",
               "Embedding(mask_zero=True) + LSTM on pre-padded ids: Keras skips the masked "
               "steps; tf2onnx must keep the mask (it emits a Loop, not an LSTM op)",
               "tensorflow-onnx tracker: a Keras LSTM after a masking Embedding is converted "
               "to loops; its masked-LSTM rewrite proposal assumes post-padding",
               keras_mask_zero("pre", return_sequences=False)),
    Regression("keras-lstm-mask-zero-postpadded-sequences", "keras", "tf2onnx",
               "the same with return_sequences on post-padded ids: Keras repeats the last "
               "output over masked steps",
               "onnxruntime tracker: LSTM Y is inconsistent with TF when sequence_lens is used",
               keras_mask_zero("post", return_sequences=True)),
    Regression("keras-lstm-mask-as-sequence-lens", "keras", "hand-built",
               "a Keras mask mapped to ONNX LSTM sequence_lens: onnxruntime zero-fills Y past "
               "each length where Keras carries the last output",
               "onnxruntime tracker: LSTM Y is inconsistent with TF inference result when "
               "seq_len is effective; keras2onnx's masking support; tensorflow-onnx's masked "
               "LSTM proposal",
               keras_mask_as_sequence_lens),
    *(Regression("train-mode-left-on", "pytorch", e,
                 "a model still in train mode when exported with default options: both "
                 "exporters must export inference behaviour (running BatchNorm statistics, "
                 "no Dropout)",
                 "the study's 'export in training mode' challenge; torch.onnx TrainingMode",
                 train_mode(e, explicit=False)) for e in _TORCH),
    Regression("export-training-mode", "pytorch", "torchscript",
               "export with training=TrainingMode.TRAINING: BatchNorm uses batch statistics and "
               "Dropout stays active in the graph, silently unlike the eval-mode original",
               "torch.onnx TrainingMode documentation; the fault battery's train-mode export",
               train_mode("torchscript", explicit=True)),
    *(Regression(f"bilinear-align-corners-{str(ac).lower()}", "pytorch", e,
                 f"F.interpolate bilinear, align_corners={ac}, 5x7 -> 9x11: ONNX Resize "
                 f"coordinate_transformation_mode must be "
                 f"{'align_corners' if ac else 'half_pixel (pytorch_half_pixel)'}",
                 "pytorch tracker: upsample_bilinear2d / interpolate export mismatches "
                 "(align_corners, coordinate modes)",
                 bilinear(e, size=(9, 11), align_corners=ac)) for ac in (True, False)
      for e in _TORCH),
    Regression("bilinear-upsampling2d", "keras", "tf2onnx",
               "Keras UpSampling2D(2, bilinear) -> Resize half_pixel",
               "the Keras side of the align_corners question",
               keras_upsampling_bilinear),
    *(Regression("bilinear-to-1x1", "pytorch", e,
                 "F.interpolate(size=(1, 1), bilinear, align_corners=False): torch samples the "
                 "centre; pytorch_half_pixel maps a length-1 output to coordinate 0",
                 "pytorch tracker: ONNX export mismatch for F.interpolate(size=(1, 1), "
                 "mode='bilinear', align_corners=False)",
                 bilinear(e, size=(1, 1), align_corners=False)) for e in _TORCH),
    *(Regression("avg-pool-ceil-count-include-pad", "pytorch", e,
                 "avg_pool2d with ceil_mode and count_include_pad: the extra boundary windows' "
                 "divisor",
                 "pytorch tracker: ONNX export mismatch for avg_pool2d with ceil_mode=True and "
                 "count_include_pad=True; onnxruntime tracker on the same divisor",
                 avg_pool_ceil(e)) for e in _TORCH),
    Regression("resize-inexact-scale", "keras", "tf2onnx",
               "Keras Resizing 5x7 -> 9x4 becomes Resize with scales; the ONNX spec floors "
               "5 x 1.8 to 8 rows where onnxruntime (and Keras) give 9",
               "OnnxSlim pull request 'fix resize output calculation': the ONNX operator doc "
               "floors, onnxruntime rounds",
               keras_resizing_inexact_scale),
    Regression("fp16-overflow", "pytorch", "torchscript",
               "the model run at half precision (initializers and inputs cast to float16): "
               "activations over 65504 become inf, LayerNorm turns them into NaN; onnxruntime's "
               "CPU provider computes these ops in float32 and hides it",
               "float16's range; the fp16 targets of the study",
               fp16_activations(255.0, 400.0), tolerance="regression_fp16_abs_max"),
    Regression("fp16-in-range", "pytorch", "torchscript",
               "control for fp16-overflow: the same model on 0..1 inputs stays in float16's "
               "range and differs by rounding only",
               "float16's range",
               fp16_activations(1.0, 100.0), tolerance="regression_fp16_abs_max"),
)
