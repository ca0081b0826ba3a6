"""Experiment configs: one YAML file per experiment, loaded into typed dataclasses.

Validation is strict: an unknown key is an error that names the key and the file, so a typo never
silently falls back to a default. Overrides use dotted keys: `--set optim.lr=1e-4`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key and the file."""


@dataclass
class ModelConfig:
    name: str = "erfpspnet"
    options: dict[str, Any] = field(default_factory=dict)   # build_model options


@dataclass
class DataConfig:
    dataset: str = "synthetic"           # camvid | cityscapes | folder | synthetic
    root: str | None = None
    description: str | None = None       # dataset description YAML (folder datasets, overrides)
    train_split: str = "train"
    val_split: str | None = "val"
    size: list[int] | None = None        # [H, W]; None = native
    spatial_size: list[int] | None = None  # BiERF-PSPNet spatial input [H1, W1]
    augment: Any = False                 # false | true (defaults) | mapping of data.augment.Augment fields
    num_workers: int | None = None       # None: a sensible default for this machine
    options: dict[str, Any] = field(default_factory=dict)   # extra dataset options
    val_options: dict[str, Any] = field(default_factory=dict)  # merged over `options` for the val split


@dataclass
class LossConfig:
    name: str = "weighted_ce"            # ce | weighted_ce | focal | ial
    class_weights: Any = "enet"          # enet | median | none | explicit list
    a: float = 1.02                      # ENet weight 1 / ln(a + f)
    include_void: bool = True            # void pixels in the frequency denominator (authors)
    preset: str = "paper"                # IAL: paper | authors_code
    alpha: float | None = None
    lam: float = 0.5
    detach_dynamic_weights: bool = False
    gamma: float = 2.0                   # focal


@dataclass
class OptimConfig:
    name: str = "adam"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 2e-4           # coupled L2 (Adam weight_decay) on conv kernels only
    decay_scope: str = "conv_kernels"    # conv_kernels | authors (skips the downsamplers they skipped)
    schedule: str = "step"               # step: x gamma at each milestone | poly: (1 - t)^power after warm-up
    milestones: list[int] = field(default_factory=lambda: [100, 200])
    gamma: float = 0.1
    power: float = 0.9                   # poly
    warmup_epochs: int = 0               # poly: linear warm-up from lr / warmup_epochs over these epochs


@dataclass
class TrainConfig:
    epochs: int = 300
    batch_size: int = 8
    val_batch_size: int | None = None
    val_every: int = 1
    amp: str = "off"                     # off | bf16 | fp16
    channels_last: bool = False
    seed: int = 0
    device: str = "auto"                 # auto | cpu | cuda | cuda:N
    best_metric: str = "mean.iou"        # dotted path into the validation report
    log_images: int = 4                  # prediction images written to TensorBoard per validation
    tensorboard: bool = True
    threads: int | None = None           # torch intra-op threads (None: torch default)
    save_every: int | None = None        # also keep epoch_N.pt every N epochs (None: only last/best)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_CHOICES = {
    ("loss", "name"): ("ce", "weighted_ce", "focal", "ial"),
    ("loss", "preset"): ("paper", "authors_code"),
    ("optim", "name"): ("adam",),
    ("optim", "schedule"): ("step", "poly"),
    ("optim", "decay_scope"): ("conv_kernels", "authors"),
    ("train", "amp"): ("off", "bf16", "fp16"),
}


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path, or the name of a shipped config (`camvid_erfpspnet_ial`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {str(name_or_path)!r} not found (shipped configs: {', '.join(names)})")


# sections a config file must have: without them a typo'd or empty file would train on defaults
REQUIRED_SECTIONS = ("model", "data")


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one without
    a word, so `lr` given twice would train with the second value unnoticed)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: the base class reports it
                break
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first: int) -> None:
        super().__init__(f"key {key!r} given twice (first on line {first}); keep one")
        self.key, self.line, self.first = key, line, first


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """A config file (path or shipped name) with `--set` overrides applied, validated. The file
    must name its model and data sections."""
    path = resolve_config_path(path)
    try:
        raw = _load_yaml(path.read_text())
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: line {e.line}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({one_line(e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({one_line(e)})") from None
    if raw is None:
        raise ConfigError(f"{path}: empty config (a config names at least its {' and '.join(REQUIRED_SECTIONS)} "
                          "sections)")
    cfg = config_from_dict(raw, source=str(path))
    missing = [s for s in REQUIRED_SECTIONS if not raw.get(s)]
    if missing:
        raise ConfigError(f"{path}: no {' and no '.join(missing)} section (a config names at least its "
                          f"{' and '.join(REQUIRED_SECTIONS)} sections)")
    for item in overrides or []:
        apply_override(cfg, item)
    validate(cfg, str(path))
    return cfg


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping of sections")
    cfg = Config()
    for section, values in raw.items():
        if section not in _sections():
            raise ConfigError(f"{source}: unknown section {section!r} (sections: {', '.join(_sections())})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: section {section!r} must be a mapping")
        for key, value in values.items():
            _set(cfg, section, key, value, source)
    validate(cfg, source)
    return cfg


def apply_override(cfg: Config, item: str) -> None:
    """Apply 'section.key=value' (value parsed as YAML: 1e-4, true, [360, 480], null)."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. optim.lr=1e-4")
    dotted, text = item.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = _load_yaml(text)
    except _DuplicateKey as e:
        raise ConfigError(f"--set {item!r}: {e}") from None
    except yaml.YAMLError:
        value = text
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if "." in key:  # e.g. model.options.bins=[1,2,4,8]
        head, sub = key.split(".", 1)
        current = getattr(_section(cfg, section, "--set"), head, None)
        if not isinstance(current, dict):
            raise ConfigError(f"--set {item!r}: {section}.{head} is not a mapping")
        current[sub] = value
        return
    _set(cfg, section, key, value, "--set")


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


def _section(cfg: Config, section: str, source: str) -> Any:
    if section not in _sections():
        raise ConfigError(f"{source}: unknown section {section!r} (sections: {', '.join(_sections())})")
    return getattr(cfg, section)


def _set(cfg: Config, section: str, key: str, value: Any, source: str) -> None:
    obj = _section(cfg, section, source)
    hints = get_type_hints(type(obj))
    if key not in hints:
        raise ConfigError(f"{source}: unknown key {section}.{key} (allowed: {', '.join(hints)})")
    setattr(obj, key, _coerce(value, hints[key], f"{source}: {section}.{key}"))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin is Union or str(origin) == "types.UnionType":
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value] if args else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):  # .nan / .inf would pass every range check (nan <= 0 is false)
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def validate(cfg: Config, source: str) -> None:
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(f"{source}: {section}.{key} must be one of {list(allowed)}, got {value!r}")
    for section, key in (("data", "size"), ("data", "spatial_size")):
        value = getattr(cfg.data, key)
        if value is not None and (len(value) != 2 or any(v <= 0 or v % 8 for v in value)):
            raise ConfigError(f"{source}: {section}.{key} must be [H, W], positive multiples of 8, got {value}")
    t = cfg.train
    for key in ("epochs", "batch_size", "val_every"):
        if getattr(t, key) < 1:
            raise ConfigError(f"{source}: train.{key} must be >= 1, got {getattr(t, key)}")
    for key in ("save_every", "threads", "val_batch_size"):
        if getattr(t, key) is not None and getattr(t, key) < 1:
            raise ConfigError(f"{source}: train.{key} must be >= 1 (or null), got {getattr(t, key)}")
    if cfg.optim.lr <= 0:
        raise ConfigError(f"{source}: optim.lr must be > 0, got {cfg.optim.lr}")
    if not (0 <= cfg.optim.warmup_epochs < t.epochs or cfg.optim.warmup_epochs == 0):
        raise ConfigError(f"{source}: optim.warmup_epochs must be >= 0 and below train.epochs ({t.epochs}), "
                          f"got {cfg.optim.warmup_epochs}")
    if cfg.optim.power <= 0:
        raise ConfigError(f"{source}: optim.power must be > 0, got {cfg.optim.power}")
    _validate_augment(cfg.data.augment, source)
    cw = cfg.loss.class_weights
    if not (isinstance(cw, list) or cw in ("enet", "median", "none")):
        raise ConfigError(f"{source}: loss.class_weights must be enet, median, none or a list, got {cw!r}")
    if isinstance(cw, list):
        cfg.loss.class_weights = [_coerce(w, float, f"{source}: loss.class_weights") for w in cw]
    if cfg.data.spatial_size is None and len(_input_names(cfg.model.name)) > 1:
        raise ConfigError(f"{source}: model {cfg.model.name} needs data.spatial_size (e.g. [1024, 2048])")


def _input_names(model: str) -> tuple[str, ...]:
    """The inputs the network declares (the registry's answer; empty for a name it does not know,
    which building the network reports with the choices)."""
    from iaseg.models import input_names

    try:
        return input_names(model)
    except ValueError:
        return ()


def _validate_augment(augment: Any, source: str) -> None:
    """data.augment is true/false or a mapping of Augment's fields; checked here so that a typo
    names the key and the file before any data is read."""
    if isinstance(augment, bool):
        return
    if not isinstance(augment, dict):
        raise ConfigError(f"{source}: data.augment must be true, false or a mapping of options, got {augment!r}")
    from iaseg.data.augment import Augment

    allowed = sorted(f.name for f in dataclasses.fields(Augment) if f.name not in ("generator", "ignore_index"))
    unknown = sorted(set(augment) - set(allowed))
    if unknown:
        raise ConfigError(f"{source}: unknown key data.augment.{unknown[0]} (allowed: {', '.join(allowed)})")
