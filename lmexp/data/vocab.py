"""Word vocabulary: the bijection between token strings and integer ids, and its JSON file.

It does not read corpora or decide what a token is; callers hand it token sequences.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from lmexp.run.summary import read_json_file


class Vocab:
    """An ordered list of types; a type's id is its position in `itos`."""

    def __init__(self, itos: Sequence[str], unk: str | None = None) -> None:
        """Args:
        itos: the types, id order.
        unk: a type in `itos` that unknown tokens map to; None makes them a KeyError, which is
            what a closed-vocabulary corpus such as PTB wants (an OOV there means a wrong file).
        """
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {word: i for i, word in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            duplicates = sorted(w for w, n in Counter(self.itos).items() if n > 1)
            raise ValueError(f"vocabulary has duplicate types: {duplicates[:10]}")
        if unk is not None and unk not in self.stoi:
            raise ValueError(f"unk token {unk!r} is not in the vocabulary")
        self.unk = unk

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, unk={self.unk!r})"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids; an unknown token maps to `unk`, or raises KeyError naming it."""
        if self.unk is not None:
            unk_id = self.stoi[self.unk]
            return [self.stoi.get(token, unk_id) for token in tokens]
        try:
            return [self.stoi[token] for token in tokens]
        except KeyError as err:
            raise KeyError(
                f"token {err.args[0]!r} is not in the vocabulary ({len(self)} types) "
                "and no unk token is configured; pass unk=<token> to map unknown tokens"
            ) from None

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids (ints or 0-d tensors) back to tokens; negative ids are rejected, not wrapped."""
        tokens = []
        for raw in ids:
            i = int(raw)
            if not 0 <= i < len(self.itos):
                raise IndexError(f"id {i} is outside the vocabulary [0, {len(self.itos)})")
            tokens.append(self.itos[i])
        return tokens

    @classmethod
    def build(cls, tokens: Iterable[str], unk: str | None = None) -> Vocab:
        """Build from a token stream, ordered by (-count, word) as the course scaffold does.

        The order is deterministic (ties broken alphabetically), so ids, and therefore
        checkpoints, are reproducible across machines. An `unk` never seen gets the last id.
        """
        counts = Counter(tokens)
        if unk is not None:
            counts.setdefault(unk, 0)
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls([word for word, _ in ordered], unk=unk)

    def to_json(self, path: str | Path) -> None:
        """Save `itos` as a plain JSON list, readable without pickle or lmexp."""
        Path(path).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path, unk: str | None = None) -> Vocab:
        """Read a list written by `to_json`; `unk` is not stored in the file, so pass it again."""
        itos = read_json_file(Path(path))
        if not isinstance(itos, list) or not all(isinstance(word, str) for word in itos):
            raise ValueError(f"{path} is not a JSON list of strings; it was not written by to_json")
        return cls(itos, unk=unk)
