import torch  # noqa: F401  (loads libtorch before the extension)

from mulop import _C


def mymuladd(a, b, c: float):
    return _C.mymuladd(a, b, c)
