"""Small hand-built models shared by test files (not a test module)."""

from __future__ import annotations

import torch
from torch import nn


class AgeGender(nn.Module):
    """conv -> relu -> global mean -> age (1), gender logits (2), their softmax (2)."""

    def __init__(self, as_dict: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.age = nn.Linear(4, 1)
        self.gender = nn.Linear(4, 2)
        self.as_dict = as_dict

    def forward(self, x):
        f = self.conv(x).relu().mean((2, 3))
        z = self.gender(f)
        if self.as_dict:
            return {"age": self.age(f), "gender": z}
        return self.age(f), z, z.softmax(1)
