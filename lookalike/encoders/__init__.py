"""Encoders: images → float vectors or binary codes, found by name.

>>> from lookalike.encoders import get_encoder
>>> get_encoder("phash").dim
64
"""

from .base import Encoder
from .registry import available_encoders, get_encoder, parse_spec, register_encoder

__all__ = ["Encoder", "available_encoders", "get_encoder", "parse_spec", "register_encoder"]
