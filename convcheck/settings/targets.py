"""Conversion targets (targets.toml): a format, a time limit and, per framework, a built-in
exporter with its options or a team's converter."""
from __future__ import annotations

from dataclasses import dataclass

from convcheck.declarations.spec import FRAMEWORKS
from convcheck.settings.files import ConfigError, _check_type, _files, _read_merged, _unknown

# --------------------------------------------------------------------------- targets

_TARGET_TYPES = {"format": str, "timeout_s": (int, float), "pytorch": dict, "keras": dict,
                 "from": str, "variant": dict}
# A variant target is made from another target's conversion (`from`), not from the original:
# the precision and optimisation variants a team ships (convcheck.conversion.variants).
# kind -> the options its table takes besides kind (calibration: training samples, never test;
# nbits: the palette's size, 2**nbits weights)
VARIANT_KINDS = {"fp16": (), "int8-dynamic": (), "int8-static": ("calibration",),
                 "optimized": (), "palettize": ("nbits",), "int8-weights": ()}
# kind -> the format of the conversion it is made from (ONNX: onnxruntime's tools; CoreML:
# coremltools.optimize.coreml, on an ML program)
VARIANT_FORMATS = {"fp16": "onnx", "int8-dynamic": "onnx", "int8-static": "onnx",
                   "optimized": "onnx", "palettize": "coreml", "int8-weights": "coreml"}
_OPTION_TYPES = {"exporter": str, "converter": str, "opset": int, "convert_to": str,
                 "precision": str, "deployment_target": str}
# The options each format's built-in exporters take (all required for coreml: nothing falls
# back to a default). A `converter` (module:function) takes any options and checks its own.
_FORMAT_OPTIONS = {"onnx": ("exporter", "opset"),
                   "coreml": ("exporter", "convert_to", "precision", "deployment_target")}
COREML_CONVERT_TO = ("mlprogram", "neuralnetwork")
COREML_PRECISIONS = ("fp32", "fp16")
# coremltools.target names, oldest first. coremltools refuses an mlprogram below macOS12 and a
# neuralnetwork from macOS12 on.
COREML_DEPLOYMENT_TARGETS = ("macOS10_15", "macOS11", "macOS12", "macOS13", "macOS14", "macOS15",
                             "macOS26")


def _check_coreml_options(path, where, opts: dict) -> None:
    for key, valid in (("convert_to", COREML_CONVERT_TO), ("precision", COREML_PRECISIONS),
                       ("deployment_target", COREML_DEPLOYMENT_TARGETS)):
        if opts.get(key) not in valid:
            raise ConfigError(f"{path}: {where}.{key} {opts.get(key)!r} unknown; "
                              f"valid: {', '.join(valid)}")
    mlprogram = opts["convert_to"] == "mlprogram"
    if opts["precision"] == "fp16" and not mlprogram:
        raise ConfigError(f"{path}: {where}.precision 'fp16' needs convert_to = 'mlprogram' "
                          f"(coremltools sets a compute precision for ML programs only)")
    if mlprogram != (COREML_DEPLOYMENT_TARGETS.index(opts["deployment_target"])
                     >= COREML_DEPLOYMENT_TARGETS.index("macOS12")):
        raise ConfigError(f"{path}: {where}.deployment_target {opts['deployment_target']!r} does "
                          f"not fit convert_to {opts['convert_to']!r}: an mlprogram needs macOS12 "
                          f"or later, a neuralnetwork macOS11 or earlier")


@dataclass(frozen=True)
class Target:
    name: str
    format: str
    timeout_s: float
    options: dict  # framework -> converter options
    shipped: bool = False  # a team's already-converted files (ModelSpec sources' artifacts)
    base: str | None = None  # a variant: the target whose conversion it is made from
    variant: dict | None = None  # a variant: {"kind": ..., its options}

    def frameworks(self) -> tuple[str, ...]:
        return tuple(f for f in FRAMEWORKS if f in self.options)


def load_targets(paths=None) -> dict[str, Target]:
    from convcheck.declarations import registry

    raw, path = _read_merged(_files("targets", paths))
    targets = {}
    variants = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        _unknown(path, name, body, _TARGET_TYPES)
        for k, v in body.items():
            _check_type(path, name, k, v, _TARGET_TYPES[k])
        if "from" in body or "variant" in body:
            variants[name] = body
            continue
        fmt = body.get("format")
        if fmt not in registry.RUNTIMES:
            raise ConfigError(f"{path}: {name}.format {fmt!r} unknown; valid: "
                              f"{', '.join(registry.RUNTIMES)}")
        if body.get("timeout_s", 1) <= 0:
            raise ConfigError(f"{path}: {name}.timeout_s must be > 0, got {body['timeout_s']}")
        options = {}
        for fw in FRAMEWORKS:
            if fw not in body:
                continue
            where, opts = f"{name}.{fw}", body[fw]
            custom = "converter" in opts
            if not custom:
                _unknown(path, where, opts, _FORMAT_OPTIONS.get(fmt, ("exporter",)))
            for k, v in opts.items():
                if k in _OPTION_TYPES:
                    _check_type(path, where, k, v, _OPTION_TYPES[k])
            if custom:
                if "exporter" in opts:
                    raise ConfigError(f"{path}: {where}: give exporter or converter, not both")
                from convcheck.declarations.spec import SpecError, import_callable
                try:
                    import_callable(opts["converter"])
                except SpecError as e:
                    raise ConfigError(f"{path}: {where}.converter: {e}") from None
            else:
                valid = registry.exporters(fmt, fw)
                if opts.get("exporter") not in valid:
                    raise ConfigError(f"{path}: {where}.exporter {opts.get('exporter')!r} unknown "
                                      f"for {fmt}; valid: {', '.join(valid)} (or converter = "
                                      f"'module:function')")
                if fmt == "coreml":
                    _check_coreml_options(path, where, opts)
            options[fw] = dict(opts)
        if not options:
            raise ConfigError(f"{path}: [{name}] converts no framework (add pytorch or keras)")
        # One artifact name per target: model.mlpackage (mlprogram) or model.mlmodel.
        if fmt == "coreml" and len({o.get("convert_to") for o in options.values()}) > 1:
            raise ConfigError(f"{path}: [{name}] convert_to differs between frameworks; "
                              f"one CoreML target makes one model type")
        targets[name] = Target(name, fmt, float(body.get("timeout_s", 600)), options)
    for name, body in variants.items():
        if body.get("from") in variants:
            raise ConfigError(f"{path}: {name}.from {body['from']!r} is itself a variant: make "
                              f"variants from a conversion target")
        targets[name] = _variant(path, name, body, targets)
    return targets


def _variant(path, name: str, body: dict, targets: dict) -> Target:
    """A target made from another target's conversion: its format, frameworks and converter
    options are the base's; it adds the variant."""
    extra = set(body) - {"from", "variant", "format", "timeout_s"}
    if extra:
        raise ConfigError(f"{path}: [{name}] is a variant (from, variant): its frameworks and "
                          f"converter come from its base target; remove {', '.join(sorted(extra))}")
    base, variant = body.get("from"), body.get("variant")
    if base is None or variant is None:
        raise ConfigError(f"{path}: [{name}] needs both `from` (the target it is made from) and "
                          f"`variant` (e.g. variant = {{ kind = \"int8-dynamic\" }})")
    if base not in targets:
        raise ConfigError(f"{path}: {name}.from {base!r} is no target; valid: "
                          f"{', '.join(t for t in targets if targets[t].base is None)}")
    b = targets[base]
    if body.get("format", b.format) != b.format:
        raise ConfigError(f"{path}: {name}.format {body['format']!r} differs from its base "
                          f"{base!r}'s ({b.format})")
    kind = variant.get("kind")
    if kind not in VARIANT_KINDS:
        raise ConfigError(f"{path}: {name}.variant.kind {kind!r} unknown; valid: "
                          f"{', '.join(VARIANT_KINDS)}")
    if b.format != VARIANT_FORMATS[kind]:
        raise ConfigError(f"{path}: {name}.from {base!r} is a {b.format} target: a {kind!r} "
                          f"variant is made from a {VARIANT_FORMATS[kind]} conversion")
    _unknown(path, f"{name}.variant", variant, ("kind", *VARIANT_KINDS[kind]))
    if b.format == "coreml":
        for fw, o in b.options.items():
            # Compressed weights are iOS16 ops (constexpr_*): an ML program for macOS13 on.
            if o.get("convert_to") != "mlprogram" or (
                    o.get("deployment_target") in COREML_DEPLOYMENT_TARGETS
                    and COREML_DEPLOYMENT_TARGETS.index(o["deployment_target"])
                    < COREML_DEPLOYMENT_TARGETS.index("macOS13")):
                raise ConfigError(f"{path}: {name}.from {base!r}: its {fw} conversion is a "
                                  f"{o.get('convert_to')} for {o.get('deployment_target')}; "
                                  f"compressed weights need an mlprogram for macOS13 or later")
    if kind == "palettize":
        n = variant.get("nbits")
        if n not in (1, 2, 3, 4, 6, 8) or isinstance(n, bool):
            raise ConfigError(f"{path}: {name}.variant.nbits must be 1, 2, 3, 4, 6 or 8 "
                              f"(coremltools' palette sizes), got {n!r}")
    if kind == "int8-static":
        n = variant.get("calibration")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"{path}: {name}.variant.calibration must be a number of training "
                              f"samples >= 1, got {n!r}")
    return Target(name, b.format, float(body.get("timeout_s", b.timeout_s)), b.options,
                  base=base, variant=dict(variant))



def select_targets(names: str | None, paths=None, targets: dict | None = None) -> dict[str, Target]:
    """Targets named in a comma-separated list (None = all), each variant's base with it; unknown
    names raise ConfigError."""
    targets = load_targets(paths) if targets is None else targets
    if names is None:
        return targets
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    if not chosen:
        raise ConfigError(f"no target named in {names!r}; valid targets: {', '.join(targets)}")
    for n in chosen:
        if n not in targets:
            raise ConfigError(f"unknown target {n!r}; valid targets: {', '.join(targets)}")
    twice = sorted({n for n in chosen if chosen.count(n) > 1})
    if twice:
        raise ConfigError(f"{names!r} names {', '.join(twice)} twice (each target runs once)")
    # A variant is made from and sized against its base conversion: the base comes along (its
    # checks run too: a broken base explains a broken variant).
    for n in list(chosen):
        base = targets[n].base
        if base is not None and base not in chosen:
            chosen.append(base)
    return {n: targets[n] for n in chosen}
