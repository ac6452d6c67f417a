"""``gf.linalg``: norms and the cross product (as torch.linalg)."""

from .ops.scan import vector_norm


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    """The 2-norm of a tensor seen as a vector (``ord`` None), or ``vector_norm`` with ``ord``;
    "fro" on matrices is the 2-norm of their entries."""
    if ord is None or ord == "fro":
        if ord == "fro" and dim is None:
            dim = (-2, -1)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: ord={ord!r} is not supported (None, 'fro' or a number)")
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """The Frobenius norm of the matrices in the last two dims (``ord="fro"`` only)."""
    if ord != "fro":
        raise ValueError(f"linalg.matrix_norm: only ord='fro' is supported, got {ord!r}")
    return vector_norm(A, 2, dim, keepdim, dtype=dtype)


__all__ = ["norm", "vector_norm", "matrix_norm"]


def cross(input, other, *, dim=-1):
    """The cross product of 3-vectors along ``dim`` (default the last, as torch.linalg.cross)."""
    from .ops.linalg import cross as _cross

    return _cross(input, other, dim)
