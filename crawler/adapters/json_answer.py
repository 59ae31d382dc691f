"""A listing API's JSON answer (TRS search, gkmlpt) as data without lone surrogates.

JSON's own escapes can name half a surrogate pair (`"\\ud800"`): json.loads makes it a lone surrogate, which no UTF-8
writer takes (a title holding one failed the writing of the run's summary, at the end of the run). Each becomes U+FFFD,
as a browser shows it. An answer without such an escape (every real one) is json.loads's, not walked again.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # (json.loads joined the escapes that make a pair into one character)


def load(text: str) -> Any:
    """json.loads(text), each lone surrogate in its strings (keys too) replaced by U+FFFD."""
    answer = json.loads(text)
    if _SURROGATE_ESCAPE.search(text) is None:
        return answer
    if isinstance(answer, str):
        return _LONE_SURROGATE.sub("\ufffd", answer)
    stack: list[Any] = [answer]  # a walk, not recursion: the nesting is as deep as json.loads took
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        for key, value in items:
            if isinstance(value, str):
                node[key] = _LONE_SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
            if isinstance(key, str) and _LONE_SURROGATE.search(key):
                node[_LONE_SURROGATE.sub("\ufffd", key)] = node.pop(key)
    return answer
