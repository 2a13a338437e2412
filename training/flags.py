"""Training flags derived from the configuration dataclasses, and ``--config FILE``.

Every field of :class:`~training.config.TrainConfig` and its sections becomes a flag: ``--field-name`` (or the
field's ``flag`` metadata), its type from the annotation, ``Literal`` values (or ``choices`` metadata) as
choices, ``bool`` as ``--x/--no-x``, help from the field's ``help`` metadata. A new field with
``metadata={"help": ...}`` is a flag without further code. Precedence, lowest first: the recipe's preset, the
``--config`` file, the flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from training.config import SECTIONS, TrainConfig, preset

_GROUP_TITLES = {
    "model": "model",
    "objective": "objective",
    "optim": "optimizer",
    "data": "data",
    "augment": "augmentation",
}


class ConfigFileError(ValueError):
    """A ``--config`` file cannot be used; the message names the file and the key."""


@dataclasses.dataclass(frozen=True)
class Flag:
    """One configuration field as a command-line flag."""

    section: str | None  # None: a top-level TrainConfig field
    name: str
    flag: str
    resumable: bool

    @property
    def dest(self) -> str:
        return f"cfg.{self.section}.{self.name}" if self.section else f"cfg.{self.name}"


def _section_classes() -> dict[str | None, type]:
    return {None: TrainConfig, **SECTIONS}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def _scalar(tp: Any) -> Any:
    """The argparse ``type`` of one annotation (Literal values are converted by their own type)."""
    if typing.get_origin(tp) is Literal:
        return type(typing.get_args(tp)[0])
    if tp in (int, float, str):
        return tp
    raise TypeError(f"no command-line type for {tp!r}: give the field cli=False metadata or a simple type")


class _TupleAction(argparse.Action):
    """Store ``nargs`` values as a tuple (frozen dataclasses keep tuples, not lists)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        setattr(namespace, self.dest, tuple(values))


def config_flags() -> list[Flag]:
    """Every configuration field that is a flag, in declaration order (sections after the top level)."""
    out: list[Flag] = []
    for section, cls in _section_classes().items():
        for f in dataclasses.fields(cls):
            if section is None and f.name in SECTIONS or not f.metadata.get("cli", True):
                continue
            flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            out.append(Flag(section, f.name, flag, bool(f.metadata.get("resume", False))))
    return out


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per configuration field; a flag not given parses as None (the config's value stays)."""
    classes = _section_classes()
    groups = {s: parser.add_argument_group(_GROUP_TITLES[s]) for s in SECTIONS}
    for fl in config_flags():
        cls = classes[fl.section]
        f = next(f for f in dataclasses.fields(cls) if f.name == fl.name)
        tp, _ = _unwrap_optional(typing.get_type_hints(cls)[f.name])
        target = groups[fl.section] if fl.section else parser
        help_text = f.metadata.get("help", "").replace("%", "%%")  # argparse formats help with %
        default = f.default if f.default is not dataclasses.MISSING else None
        if default not in (None, "") and fl.name != "recipe":  # a recipe's preset may set another value
            help_text += f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": fl.dest, "default": None, "help": help_text}
        if tp is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(tp) in (tuple, list):  # tuple[X, ...] / list[X]: --flag A B C
            kwargs.update(nargs="+", type=_scalar(typing.get_args(tp)[0]), metavar=f.name.upper())
            if typing.get_origin(tp) is tuple:
                kwargs["action"] = _TupleAction
        else:
            kwargs["type"] = _scalar(tp)
            choices = f.metadata.get("choices")
            if choices is None and typing.get_origin(tp) is Literal:
                choices = typing.get_args(tp)
            if choices is not None:
                kwargs["choices"] = tuple(choices)
            else:
                kwargs["metavar"] = f.name.upper()
        target.add_argument(fl.flag, **kwargs)


def given_flags(args: argparse.Namespace) -> dict[Flag, Any]:
    """The configuration flags given on the command line, with their values."""
    ns = vars(args)
    return {fl: ns[fl.dest] for fl in config_flags() if ns.get(fl.dest) is not None}


def apply(cfg: TrainConfig, changes: dict[tuple[str | None, str], Any]) -> TrainConfig:
    """``cfg`` with ``{(section or None, field): value}`` applied."""
    top = {name: v for (s, name), v in changes.items() if s is None}
    sections = {
        s: dataclasses.replace(getattr(cfg, s), **{n: v for (sec, n), v in changes.items() if sec == s})
        for s in SECTIONS
        if any(sec == s for sec, _ in changes)
    }
    return dataclasses.replace(cfg, **top, **sections)


# A config file may also hold the options `python -m training export` takes for the model it trains (the
# shipped models' files do; scripts/train_models.py applies them).
EXPORT_SECTION = "export"
EXPORT_OPTIONS = ("truncation",)


def read_config_file(path: Path) -> dict[tuple[str | None, str], Any]:
    """The settings of a JSON or TOML file shaped like ``TrainConfig.to_json()`` (any subset of it).

    Keys are checked against the dataclasses, so a misspelt setting stops the run instead of being ignored.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigFileError(f"--config {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigFileError(f"--config {path}: not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"--config {path}: expected a table of settings at the top level")
    classes = _section_classes()
    known = {s: {f.name: f for f in dataclasses.fields(c)} for s, c in classes.items()}
    changes: dict[tuple[str | None, str], Any] = {}

    def put(section: str | None, key: str, value: Any) -> None:
        where = f"{section}.{key}" if section else key
        if key not in known[section]:
            choices = ", ".join(sorted(known[section]))
            raise ConfigFileError(f"--config {path}: unknown setting {where!r} (known: {choices})")
        tp, optional = _unwrap_optional(typing.get_type_hints(classes[section])[key])
        if value is None and optional:
            changes[(section, key)] = None
            return
        if typing.get_origin(tp) in (tuple, list):
            item = _scalar(typing.get_args(tp)[0])
            if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
                raise ConfigFileError(
                    f"--config {path}: {where} must be a list of {item.__name__}, got {value!r}"
                )
            changes[(section, key)] = typing.get_origin(tp)(value)
            return
        want = bool if tp is bool else _scalar(tp)
        ok = isinstance(value, want) and (want is bool or not isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigFileError(f"--config {path}: {where} must be {want.__name__}, got {value!r}")
        choices = known[section][key].metadata.get("choices")
        if choices is None and typing.get_origin(tp) is Literal:
            choices = typing.get_args(tp)
        if choices is not None and value not in choices:
            raise ConfigFileError(f"--config {path}: {where} must be one of {list(choices)}, got {value!r}")
        changes[(section, key)] = value

    export = data.pop(EXPORT_SECTION, None)
    # for scripts/train_models.py's export step; training itself ignores it
    if export is not None and (not isinstance(export, dict) or set(export) - set(EXPORT_OPTIONS)):
        raise ConfigFileError(
            f"--config {path}: {EXPORT_SECTION} must be a table of export options "
            f"({', '.join(EXPORT_OPTIONS)})"
        )
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigFileError(f"--config {path}: {key} must be a table of settings")
            for k, v in value.items():
                put(key, k, v)
        else:
            put(None, key, value)
    return changes


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's configuration: the recipe's preset, then ``--config``'s settings, then the flags.

    The recipe comes from the flag, else the file, else ``dcgan``. Raises ValueError (ConfigFileError for
    the file) naming what is wrong.
    """
    file_changes = read_config_file(args.config) if getattr(args, "config", None) else {}
    flags = {(fl.section, fl.name): v for fl, v in given_flags(args).items()}
    recipe = flags.get((None, "recipe"), file_changes.get((None, "recipe"), "dcgan"))
    return apply(apply(preset(recipe), file_changes), flags)
