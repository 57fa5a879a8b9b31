"""Faces: landmark backends, alignment to a canonical crop, and the six region masks."""
