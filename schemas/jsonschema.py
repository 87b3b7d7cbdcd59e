"""JSON Schema files for the three topics, generated from the pydantic models.

``python -m schemas.jsonschema`` rewrites ``schemas/json/``; a test keeps the files in sync.
"""

import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel

from schemas.coded import ClaimCoded
from schemas.dlq import DeadLetter
from schemas.raw import ClaimRaw

SCHEMA_DIR: Final = Path(__file__).parent / "json"

# Input is described as producers must write it; outputs as we serialize them.
TOPIC_MODELS: Final[dict[str, tuple[type[BaseModel], Literal["validation", "serialization"]]]] = {
    "claims.raw": (ClaimRaw, "validation"),
    "claims.coded": (ClaimCoded, "serialization"),
    "claims.dlq": (DeadLetter, "serialization"),
}


def schema_for(topic: str) -> dict[str, Any]:
    model, mode = TOPIC_MODELS[topic]
    schema = model.model_json_schema(mode=mode)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:claimcoder:schema:{topic}:v1",
        **schema,
    }


def schema_path(topic: str) -> Path:
    return SCHEMA_DIR / f"{topic}.schema.json"


def render(topic: str) -> str:
    return json.dumps(schema_for(topic), indent=2, sort_keys=False) + "\n"


def load(topic: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_path(topic).read_text(encoding="utf-8"))
    return loaded


def write_all() -> list[Path]:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for topic in TOPIC_MODELS:
        path = schema_path(topic)
        path.write_text(render(topic), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_all():
        print(p)
