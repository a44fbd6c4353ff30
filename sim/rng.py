"""The integer pseudo-random generator of the ``random`` scheduler (semantics section 6.3).

Plain integer functions, so that the readable engine calls them directly and the compiled kernel
compiles the very same source. Values stay below 2^48, inside every integer type involved.
"""

__all__ = ["MASK32", "pick_index", "sample_seed", "xorshift32"]

MASK32 = 0xFFFFFFFF


def xorshift32(x):
    """Marsaglia's xorshift32 (13, 17, 5): the next state, which is also the output."""
    x ^= (x << 13) & MASK32
    x ^= x >> 17
    x ^= (x << 5) & MASK32
    return x


def pick_index(r, n):
    """Index into a pending list of ``n`` entries (``1 <= n <= 65536``) from output ``r``."""
    return ((r >> 16) * n) >> 16


def sample_seed(seed: int, sample_id: int) -> int:
    """The generator state a sample starts from: MurmurHash3's finalizer of seed and id."""
    x = (seed + sample_id * 0x9E3779B9) & MASK32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & MASK32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & MASK32
    x ^= x >> 16
    return x if x != 0 else 0x9E3779B9
