"""`datajoint.blob`: pack/unpack in DataJoint's blob format."""

from __future__ import annotations

from ..blob import MatCell, MatStruct, pack, unpack

__all__ = ["MatCell", "MatStruct", "pack", "unpack"]
