"""The configuration reference, generated from the settings model (``worker/settings.py``).

``python -m worker.settings_reference`` rewrites ``docs/configuration.md``; a test keeps it in
sync. Each variable is the model's prefix, the component and the field, joined by its nested
delimiter (``CLAIMCODER_`` + ``KAFKA`` + ``_`` + ``BOOTSTRAP_SERVERS``); the description is the
field's (its ``description`` or attribute docstring), the default the model's own.
"""

import inspect
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MultipleOf
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from worker.settings import Settings, default_state_dir

REFERENCE_PATH: Final = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


@dataclass(frozen=True, slots=True)
class Variable:
    name: str  # CLAIMCODER_KAFKA_BOOTSTRAP_SERVERS
    type: str  # markdown
    default: str  # markdown
    description: str


def _constraints(metadata: list[Any]) -> list[str]:
    words = []
    for item in metadata:
        if isinstance(item, Ge):
            words.append(f">= {item.ge}")
        elif isinstance(item, Gt):
            words.append(f"> {item.gt}")
        elif isinstance(item, Le):
            words.append(f"<= {item.le}")
        elif isinstance(item, Lt):
            words.append(f"< {item.lt}")
        elif isinstance(item, MultipleOf):
            words.append(f"multiple of {item.multiple_of}")
        elif getattr(item, "pattern", None):
            words.append(f"matches `{item.pattern}`")
    return words


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        words = _constraints(
            [
                m
                for item in metadata
                for m in (item.metadata if isinstance(item, FieldInfo) else [item])
            ]
        )
        return _type_name(inner) + (f" ({', '.join(words)})" if words else "")
    if origin in (Union, types.UnionType):
        parts = [a for a in get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(p) for p in parts)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(annotation))
    if origin is dict:
        return "JSON object"
    if origin in (list, tuple):
        return "JSON array"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return str(getattr(annotation, "__name__", annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is default_state_dir:
        return "`$XDG_STATE_HOME/claimcoder` (`~/.local/state/claimcoder`)"
    if field.default_factory is not None:
        value = field.get_default(call_default_factory=True, validated_data={})
    elif field.is_required():
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        value = value.get_secret_value()  # the defaults are local development URLs
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, dict | list | tuple):  # as the environment gives them: JSON
        value = json.dumps(value)
    return f"`{value}`"


def _markdown(text: str) -> str:
    """One line, reStructuredText's ``code`` as markdown's `code`."""
    return " ".join(text.replace("``", "`").split())


def _doc(model: type[BaseModel]) -> str:
    """The component's class docstring, else its own module's first paragraph."""
    doc = model.__doc__ if "__doc__" in vars(model) else None
    if not doc and model.__module__ != Settings.__module__:
        module = inspect.getmodule(model)
        doc = ((module.__doc__ if module else None) or "").strip().split("\n\n")[0]
    return _markdown(doc or "")


def _row(name: str, field: FieldInfo) -> Variable:
    annotation = field.rebuild_annotation()
    return Variable(
        name=name.upper(),
        type=_type_name(annotation),
        default=_default(field),
        description=_markdown(field.description or ""),
    )


def components() -> list[tuple[str, str, list[Variable]]]:
    """(title, docstring, variables) for the top-level fields, then for each component."""
    config = Settings.model_config
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "")
    top: list[Variable] = []
    nested: list[tuple[str, str, list[Variable]]] = []
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            rows = [
                _row(f"{prefix}{name}{delimiter}{inner}", inner_field)
                for inner, inner_field in model.model_fields.items()
            ]
            nested.append((name, _doc(model), rows))
        else:
            top.append(_row(f"{prefix}{name}", field))
    return [("general", "", top), *nested]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def render() -> str:
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `python -m worker.settings_reference` from worker/settings.py;"
        " do not edit. -->",
        "",
        "Every setting is an environment variable (pydantic-settings, prefix `CLAIMCODER_`):",
        "the prefix, the component and the field. Mappings and lists are JSON. Secrets come",
        "only from the environment and are never printed. Sources, strongest first: the",
        "environment, the local stack's `stack.env`, the defaults below. OpenTelemetry is",
        "configured by its standard `OTEL_*` variables (README, Observability).",
        "",
    ]
    for title, doc, rows in components():
        lines.append(f"## {title}")
        lines.append("")
        if doc:
            lines.extend([doc, ""])
        lines.append("| variable | type | default | description |")
        lines.append("|---|---|---|---|")
        for row in rows:
            cells = (f"`{row.name}`", row.type, row.default, row.description)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write(path: Path = REFERENCE_PATH) -> Path:
    path.write_text(render(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write())
