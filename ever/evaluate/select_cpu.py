"""Label propagation's top-k selections on CPU, compiled (numba): the keys of
:func:`ever.evaluate.propagation.select` (its matrix products, then ``torch.topk``), bit for bit, faster.

:func:`topk` takes torch's products, bit for bit select's (frame 0's queries a chunk at a time; each query tile
against its windows, the tile plan of :class:`ever.evaluate.propagation.Tile`) and selects in compiled loops: no copies
of rows, no gathers, no ``topk`` (which copies each row into (value, index) pairs before selecting). For raw
colour (at most ``FUSED_CHANNELS`` channels) frame 0's affinities are computed inside the scan instead
(:func:`scan_rows_fused`), in the order of operations of torch's product, checked once per shape. The windows'
keys are read where they lie in strips of the preceding frames (:func:`_strips`) instead of copied a tile at a
time, and the windows are scanned on the calling thread up to 2 threads (:func:`scan_window_serial`).

Why the keys are the same. ``torch.topk`` on CPU sorts (value, index) pairs with libstdc++'s
``std::partial_sort`` when k * 64 <= the row's length (a heap of the row's first k entries; a later entry
enters only when it beats the heap's top, then ``std::sort_heap``), else ``std::nth_element`` and
``std::sort`` of the first k - 1. These are written out below step for step, and each row is scanned in
``select``'s order: frame 0's cells in raster order; the preceding frames slot by slot, each query's tile
window in raster order, its first k positions filling the heap (-inf where beyond the radius) and the
in-radius keys after them; then the 2k survivors merged by ``nth_element``. An entry that does not beat the
heap's top changes nothing, so a run of entries whose largest does not is passed over.

Imported at the first CPU propagation, not with ``ever``: numba compiles at the first call (``cache=True``:
once per machine, then read from ``__pycache__``). numba's threads: its ``workqueue`` layer unless one was
chosen (its OpenMP layer beside torch's slowed torch), as many as torch uses.
"""

from __future__ import annotations

import functools
import math
import weakref

import numba
import numpy as np
import torch
import torch.nn.functional as F
from numba import prange
from numba.extending import intrinsic

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"


def use_threads(n: int) -> None:
    """Run the kernels on ``n`` threads (at most numba's pool)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


# libstdc++'s algorithms on (value, key) pairs held in two arrays, with torch's comparison for the
# largest values: comp(a, b) = a > b, so the heap's top is its smallest value.


@numba.njit(inline="always")
def _push_heap(hv, hk, hole, top, v, key):
    parent = (hole - 1) // 2
    while hole > top and hv[parent] > v:
        hv[hole], hk[hole] = hv[parent], hk[parent]
        hole = parent
        parent = (hole - 1) // 2
    hv[hole], hk[hole] = v, key


@numba.njit(inline="always")
def _adjust_heap(hv, hk, hole, length, v, key):
    top = hole
    second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if hv[second] > hv[second - 1]:
            second -= 1
        hv[hole], hk[hole] = hv[second], hk[second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        hv[hole], hk[hole] = hv[second - 1], hk[second - 1]
        hole = second - 1
    _push_heap(hv, hk, hole, top, v, key)


@numba.njit(cache=True)
def _make_heap(hv, hk, length):
    if length < 2:
        return
    parent = (length - 2) // 2
    while True:
        _adjust_heap(hv, hk, parent, length, hv[parent], hk[parent])
        if parent == 0:
            return
        parent -= 1


@numba.njit(cache=True)
def _sort_heap(hv, hk, length):
    while length > 1:
        length -= 1
        v, key = hv[length], hk[length]
        hv[length], hk[length] = hv[0], hk[0]
        _adjust_heap(hv, hk, 0, length, v, key)


@numba.njit(cache=True)
def _swap(hv, hk, i, j):
    hv[i], hv[j] = hv[j], hv[i]
    hk[i], hk[j] = hk[j], hk[i]


@numba.njit(cache=True)
def _insertion_sort(hv, hk, first, last):
    if first == last:
        return
    for i in range(first + 1, last):
        v, key = hv[i], hk[i]
        if v > hv[first]:
            for j in range(i, first, -1):
                hv[j], hk[j] = hv[j - 1], hk[j - 1]
            hv[first], hk[first] = v, key
        else:
            j = i
            while v > hv[j - 1]:
                hv[j], hk[j] = hv[j - 1], hk[j - 1]
                j -= 1
            hv[j], hk[j] = v, key


@numba.njit(cache=True)
def _heap_select(hv, hk, first, middle, last):
    """std::__heap_select on [first, last) with first = 0."""
    _make_heap(hv, hk, middle - first)
    for i in range(middle, last):
        if hv[i] > hv[first]:
            v, key = hv[i], hk[i]
            hv[i], hk[i] = hv[first], hk[first]
            _adjust_heap(hv, hk, first, middle - first, v, key)


@numba.njit(cache=True)
def _nth_element_sort(hv, hk, length, k):
    """torch.topk's nth_element branch: std::nth_element(0, k - 1, length) then std::sort(0, k - 1)."""
    first, last, nth = 0, length, k - 1
    depth = 0
    n = length
    while n > 1:
        n >>= 1
        depth += 1
    depth *= 2  # std::__lg(length) * 2
    done = False
    while last - first > 3:
        if depth == 0:
            _heap_select(hv[first:], hk[first:], 0, nth + 1 - first, last - first)
            _swap(hv, hk, first, nth)
            done = True
            break
        depth -= 1
        mid = first + (last - first) // 2
        a, b, c = first + 1, mid, last - 1  # __move_median_to_first(first, a, b, c)
        if hv[a] > hv[b]:
            if hv[b] > hv[c]:
                _swap(hv, hk, first, b)
            elif hv[a] > hv[c]:
                _swap(hv, hk, first, c)
            else:
                _swap(hv, hk, first, a)
        elif hv[a] > hv[c]:
            _swap(hv, hk, first, a)
        elif hv[b] > hv[c]:
            _swap(hv, hk, first, c)
        else:
            _swap(hv, hk, first, b)
        lo, hi = first + 1, last  # __unguarded_partition(first + 1, last, pivot = first)
        while True:
            while hv[lo] > hv[first]:
                lo += 1
            hi -= 1
            while hv[first] > hv[hi]:
                hi -= 1
            if not lo < hi:
                break
            _swap(hv, hk, lo, hi)
            lo += 1
        if lo <= nth:
            first = lo
        else:
            last = lo
    if not done:
        _insertion_sort(hv, hk, first, last)
    _insertion_sort(hv, hk, 0, k - 1)  # std::sort of k - 1 <= 16 entries is an insertion sort (k <= 17: _compiled_plan)


@numba.njit(inline="always")
def _scan(hv, hk, k, a, lo, hi, key0):
    """Scan a[lo:hi] (keys key0 + j) into the heap hv, hk of k as libstdc++'s __heap_select does: an entry
    enters when it beats the top. A run none of whose entries beats it changes nothing: it is passed over
    after one pass that ors the comparisons with the top. Written over the run's own view (``a[lo:hi]``), that
    pass is compiled to whole vectors for runs as short as these (measured: a loop from lo to hi stayed one
    comparison a cycle; a float max does not vectorise without fast-math flags; a sum of the comparisons is
    kept in 64-bit integers)."""
    top = hv[0]
    run = a[lo:hi]
    above = False
    for j in range(run.shape[0]):
        above |= run[j] > top
    if not above:
        return
    for j in range(lo, hi):
        if a[j] > hv[0]:
            _adjust_heap(hv, hk, 0, k, a[j], key0 + j)


@numba.njit(parallel=True, cache=True)
def scan_rows(aff, row0, vals, keys):
    """Frame 0: ``aff[b].topk(k)`` (heap path, k * 64 <= M) for the queries row0 .. row0 + B - 1 of aff (B, M),
    into rows of vals (N, k) and keys (N, k) (the column of each value)."""
    B, M = aff.shape
    k = vals.shape[1]
    for b in prange(B):
        hv, hk, a = vals[row0 + b], keys[row0 + b], aff[b]
        for j in range(k):
            hv[j] = a[j]
            hk[j] = j
        _make_heap(hv, hk, k)
        for jb in range(k, M, 32):
            _scan(hv, hk, k, a, jb, min(M, jb + 32), 0)
        _sort_heap(hv, hk, k)


@numba.njit(inline="always")
def _scan_window_query(t, aff, fs, rs, far, runs, y0, x0, tx, ky0, kx0, S, w, vals, keys):
    RS = far.shape[1]
    n = aff.shape[1] // RS
    N, k = vals.shape
    i = (y0 + t // tx) * w + x0 + t % tx
    hv, hk, a = vals[i], keys[i], aff[t]
    for p in range(k):
        hk[p] = N + (ky0 + p // S) * w + kx0 + p % S
        hv[p] = -np.inf if far[t, p] else a[p // S * rs + p % S]
    _make_heap(hv, hk, k)
    for f in range(n):
        for r in range(runs.shape[1]):
            pa, pb = runs[t, r, 0], runs[t, r, 1]
            if f == 0:
                pa = max(pa, min(pb, k))  # the first k positions are in the heap from the start
            o = f * fs + r * rs - r * S  # window position p of frame f at o + p
            _scan(hv, hk, k, a, o + pa, o + pb, N * (1 + f) + (ky0 + r) * w + kx0 - r * S - o)
    _sort_heap(hv, hk, k)


@numba.njit(parallel=True, cache=True)
def scan_window(aff, fs, rs, far, runs, y0, x0, tx, ky0, kx0, S, w, vals, keys):
    """One query tile of T cells, tx a row, at (y0, x0): its affinities aff (T, n * R*S) to the window of R x S
    cells at (ky0, kx0) in each of the n preceding frames (frame f's row r at f * fs + r * rs), far (T, R*S) and
    runs (T, R, 2) of its :class:`ever.evaluate.propagation.Tile` -> each query's top-k over the in-radius keys,
    scanned as ``select`` scans them (into its rows of vals (N, k), keys (N, k); key N * (1 + f) + cell)."""
    for t in prange(far.shape[0]):
        _scan_window_query(t, aff, fs, rs, far, runs, y0, x0, tx, ky0, kx0, S, w, vals, keys)


@numba.njit(cache=True)
def scan_window_serial(aff, fs, rs, far, runs, y0, x0, tx, ky0, kx0, S, w, vals, keys):
    """:func:`scan_window` on the calling thread, taken up to ``SERIAL_THREADS``: it is called for every tile (112 a
    frame at 480p), and a parallel kernel costs at least 0.07 ms of CPU a start, even on one thread (numba's
    workqueue). Measured on 2 cores (bench/README, session 25): with it and the strips raw colour's top-k took
    18 % less CPU on one thread, and no more wall-clock on two."""
    for t in range(far.shape[0]):
        _scan_window_query(t, aff, fs, rs, far, runs, y0, x0, tx, ky0, kx0, S, w, vals, keys)


@numba.njit(parallel=True, cache=True)
def merge(v0, k0, v1, k1, vals, keys):
    """``torch.cat([v0, v1], 1).topk(k)`` row by row (nth_element path), with the keys of the values."""
    N, k = vals.shape
    for i in prange(N):
        tv, tk = np.empty(2 * k, np.float32), np.empty(2 * k, np.int64)
        tv[:k], tk[:k], tv[k:], tk[k:] = v0[i], k0[i], v1[i], k1[i]
        _nth_element_sort(tv, tk, 2 * k, k)
        vals[i], keys[i] = tv[:k], tk[:k]


# Few channels (raw colour): frame 0's affinities are computed inside the scan, a block at a time, instead of
# by torch's product into rows that the scan then reads back. Each is the chain torch's product computes on this
# machine (fused multiply-adds over the channels in order, from +0), so the values are the same bit for bit;
# _chain_is_torchs checks that once per shape, and the products stay with torch where it is not.

FUSED_CHANNELS = 8  # at most this many channels; beyond, torch's blocked products are faster
BLOCK = 256  # frame 0's affinities computed at a time


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma), as torch's product accumulates."""

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


@numba.njit(inline="always")
def _dots(q, keys, j0, n, out):
    """out[j] = q . keys[:, j0 + j] for j < n, q (C,), keys (C, M), in torch's order of operations."""
    k0 = keys[0, j0 : j0 + n]
    for j in range(n):
        out[j] = _fma(q[0], k0[j], np.float32(0.0))  # from +0, as torch: a product -0 becomes +0
    for c in range(1, q.shape[0]):
        qc, kc = q[c], keys[c, j0 : j0 + n]
        for j in range(n):
            out[j] = _fma(qc, kc[j], out[j])


@numba.njit(cache=True)
def _dots_rows(q, keys):
    """(B, C) x (C, M) -> (B, M) by :func:`_dots`: what :func:`_chain_is_torchs` compares with torch's product."""
    out = np.empty((q.shape[0], keys.shape[1]), np.float32)
    for b in range(q.shape[0]):
        _dots(q[b], keys, 0, keys.shape[1], out[b])
    return out


@numba.njit(parallel=True, cache=True)
def scan_rows_fused(q, first, vals, keys):
    """Frame 0 for every query, as :func:`scan_rows` scans torch's product: q (N, C), first (C, M) -> vals, keys
    (N, k); M >= k (``propagation._compiled_plan`` asks M >= 64 k)."""
    N, k = vals.shape
    M = first.shape[1]
    for i in prange(N):
        a = np.empty(BLOCK, np.float32)
        hv, hk = vals[i], keys[i]
        _dots(q[i], first, 0, k, hv)
        for j in range(k):
            hk[j] = j
        _make_heap(hv, hk, k)
        for jb in range(k, M, BLOCK):
            n = min(M - jb, BLOCK)
            _dots(q[i], first, jb, n, a)
            for s in range(0, n, 32):
                _scan(hv, hk, k, a, s, min(n, s + 32), jb)
        _sort_heap(hv, hk, k)


@functools.cache
def _chain_is_exact(C: int, rows: tuple[int, ...], M: int, transposed: bool, threads: int, precision: str) -> bool:
    gen = torch.Generator().manual_seed(C)
    queries, keys = torch.randn(C, M, generator=gen), torch.randn(C, M, generator=gen)
    queries, keys = F.normalize(queries, dim=0), F.normalize(keys, dim=0)
    queries[:, 3::7], keys[:, ::5] = 0.0, keys[:, 1:2]  # zero queries, tied keys
    keys[:, 3::11] = -keys[:, 3::11].abs()  # products of -0 and of both signs
    queries = queries.T if transposed else queries.T.contiguous()  # (M, C) laid out as the real queries
    for B in rows:  # two products of B rows as frame 0's chunks (64 of one row)
        for i in range(0, min(M - B + 1, max(2 * B, 64)), B):
            q = queries[i : i + B]
            ours, torchs = _dots_rows(np.ascontiguousarray(q.numpy()), keys.numpy()), (q @ keys).numpy()
            if not np.array_equal(ours.view(np.int32), torchs.view(np.int32)):
                return False
    return True


def _chain_is_torchs(q: torch.Tensor, step: int) -> bool:
    """Whether :func:`_dots` gives torch's product bit for bit (signed zeros included) for frame 0's queries q
    (N, C) as ``select`` multiplies them: chunks of ``step`` rows against the N cells. A product's bits may
    depend on its shape and layout (one-row products take another BLAS path, whose sums are not the chain from
    4 channels up), its threads and the matmul precision, so each is checked once, on random features."""
    N, C = q.shape
    if not (q.is_contiguous() or q.T.is_contiguous()):
        return False
    rows = tuple(sorted({min(step, N), N % step} - {0}))
    precision = torch.get_float32_matmul_precision()
    return _chain_is_exact(C, rows, N, not q.is_contiguous(), torch.get_num_threads(), precision)


STRIP_FLOATS = 2**28  # at most this many floats (1 GiB) in the preceding frames' strips (_strips)
SERIAL_THREADS = 2  # up to this many threads the windows are scanned on the calling thread (scan_window_serial)


@functools.cache
def _strip_exact(
    T: int, C: int, R: int, S: int, n: int, q_layout: tuple, block_align: int, threads: int, precision: str
) -> bool:
    gen = torch.Generator().manual_seed(T * R * S + C)
    (st0, st1), q_align = q_layout
    q = torch.randn(q_align + 1 + (T - 1) * st0 + (C - 1) * st1, generator=gen)
    qt = q.as_strided((T, C), (st0, st1), q_align)  # (T, C) laid out and aligned as the tile's queries
    keys = F.normalize(torch.randn(n, R, S, C, generator=gen), dim=3)
    block = torch.empty(block_align + keys.numel())[block_align:].view(R, n, S, C)  # aligned as its strip's block
    block.copy_(keys.permute(1, 0, 2, 3))
    selects = qt @ keys.view(n * R * S, C).T  # (T, n*R*S): select's windows, copied (n, R, S, C)
    ours = (qt @ block.view(R * n * S, C).T).view(T, R, n, S).permute(0, 2, 1, 3).reshape(T, n * R * S)
    return torch.equal(selects.view(torch.int32), ours.view(torch.int32))


def _strips(queries: list, prev_feats: torch.Tensor, tiles, work: dict) -> dict | None:
    """The preceding frames' features (n, C, h, w) in strips, one per window column range [a, b) of the tiles,
    each laid out (h, n, b - a, C): a tile's window (rows ky) is then one contiguous (R, n, S, C) block that its
    product reads where it lies. Else each tile copies its window (n, R, S, C), and a key is copied into the
    windows of about 14 tiles (30 x 30 windows, 8 x 8 tiles), a quarter of a window's time at 256 channels. Taken
    where torch's products of the strips' blocks are its products of select's copies bit for bit (the columns in
    another order; BLAS results may depend on the operands' layout and alignment: checked once per tile shape,
    query layout and alignment, block alignment, thread count and matmul precision, on random features) and the
    strips take at most ``STRIP_FLOATS``; else None, and ``work`` keeps no strips. ``queries``: each tile's
    queries (T, C) as its product takes them.

    Laying out all n frames copies each key about 4 times (the column ranges overlap). Only one frame is laid
    out again when ``work["slot"]`` (set by :func:`ever.evaluate.propagation.propagate` alone, right after it
    overwrites that slot of its ring) names it and the features are the very tensor of the last layout: the same
    storage, still alive (a weak reference to it), the same view of it (address, shape, strides), the same
    strips buffer and column ranges, and written exactly once since by torch (its version counter, shared by
    the views of one storage, counts every in-place op through torch; writes through numpy or ``.data`` are
    not counted, and nothing writes the ring so). Anything else, inference tensors included (they keep no
    version), lays out all n frames."""
    n, C, h, w = prev_feats.shape
    cols, size = {}, 0
    for a, b in sorted({(t.kx.start, t.kx.stop) for t in tiles}):
        cols[a, b], size = size, size + h * n * (b - a) * C
    slot, held = work.pop("slot", None), work.pop("strips_of", None)
    if size > STRIP_FLOATS:
        work.pop("strips", None)
        return None
    buf, threads, precision = _work(work, "strips", size), torch.get_num_threads(), torch.get_float32_matmul_precision()
    for t, qt in zip(tiles, queries):
        T, R, S = t.far.shape[0], t.ky.stop - t.ky.start, t.kx.stop - t.kx.start
        block = buf.data_ptr() // 4 + cols[t.kx.start, t.kx.stop] + t.ky.start * n * S * C  # its address / 4
        layout = (qt.stride(), qt.data_ptr() // 4 % 16)  # alignment in floats within 64 bytes
        if not _strip_exact(T, C, R, S, n, layout, block % 16, threads, precision):
            work.pop("strips", None)
            return None
    storage = prev_feats if prev_feats._base is None else prev_feats._base
    view = (prev_feats.data_ptr(), tuple(prev_feats.shape), prev_feats.stride(), buf.data_ptr(), cols)
    version = None if prev_feats.is_inference() else prev_feats._version
    frames = slice(None)  # the frames laid out: all, or the one written since
    if version is not None and held is not None and slot is not None and 0 <= slot < n:
        same, laid_out, where = held
        if same() is storage and where == view and version == laid_out + 1:
            frames = slice(slot, slot + 1)
    strips = {}
    for (a, b), off in cols.items():
        strips[a, b] = buf[off : off + h * n * (b - a) * C].view(h, n, b - a, C)
        strips[a, b][:, frames].copy_(prev_feats[frames, :, :, a:b].permute(2, 0, 3, 1))
    if version is not None:  # what the strips hold now
        work["strips_of"] = (weakref.ref(storage), version, view)
    return strips


def tile_queries(query: torch.Tensor, tiles) -> list[torch.Tensor]:
    """Each tile's queries (T, C), from query (C, h, w), as its window's product takes them (a view where the
    tile's cells are contiguous, else a copy): what :func:`_strips` checks and :func:`topk` multiplies."""
    C = query.shape[0]
    return [query[:, t.qy, t.qx].reshape(C, t.far.shape[0]).T for t in tiles]


def _work(work: dict, name: str, *shape: int) -> torch.Tensor:
    """A float32 CPU tensor of ``shape`` from ``work`` (grown when too small), for a product's output: reused from
    frame to frame, as a fresh tensor of this size is mapped anew each time, and filling its pages cost a third
    of frame 0's product time. ``work`` holds at most frame 0's chunk of products (``step`` x N floats), one
    tile's window (its keys and affinities) and the strips (at most ``STRIP_FLOATS``: about 4 times the preceding
    frames' features, 0.5 GB for 256 channels at 480p); besides, :func:`_strips` keeps in it what the strips hold
    (``strips_of``: a weak reference, which keeps no memory) and reads ``slot``."""
    size = math.prod(shape)
    if name not in work or work[name].numel() < size:
        work[name] = torch.empty(size, dtype=torch.float32, device="cpu")
    return work[name][:size].view(shape)


def topk(
    query: torch.Tensor,
    first_feat: torch.Tensor,
    prev_feats: torch.Tensor,
    k: int,
    tiles,
    step: int,
    work: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """query, first_feat (C, h, w) and prev_feats (n, C, h, w), float32 on CPU, NaN-free -> each query's top-k
    over the context as ``select`` takes it: values (h*w, k) descending and keys (h*w, k), j < h*w frame 0's
    cell j, h*w * (1 + f) + j cell j of preceding frame f. ``tiles``: the plan of query tiles, their windows and
    which keys are within the radius (``propagation._tiles``, the one home of the radius test); ``step``: frame
    0's queries a product; ``work``: a dict in which the products' outputs and the strips are kept for the next
    call (one propagation's, one call at a time: :func:`_work`; ``work["slot"]``: :func:`_strips`), else fresh
    ones. Needs every row long enough for ``torch.topk``'s heap path and k <= 17 (``propagation._compiled_plan``).
    One call at a time in a process: numba's workqueue layer is not thread-safe."""
    C, h, w = query.shape
    n, N = prev_feats.shape[0], h * w
    use_threads(torch.get_num_threads())
    work = {} if work is None else work
    v0, k0 = np.empty((N, k), np.float32), np.empty((N, k), np.int64)
    v1, k1 = np.empty((N, k), np.float32), np.empty((N, k), np.int64)
    with torch.no_grad():
        q, first = query.reshape(C, N).T, first_feat.reshape(C, N)
        fused = C <= FUSED_CHANNELS and _chain_is_torchs(q, step)
        if fused:
            scan_rows_fused(q.contiguous().numpy(), first.contiguous().numpy(), v0, k0)
        else:
            for i in range(0, N, step):
                aff = _work(work, "rows", min(step, N - i), N)
                torch.matmul(q[i : i + step], first, out=aff)
                scan_rows(aff.numpy(), i, v0, k0)
        queries = tile_queries(query, tiles)
        strips = _strips(queries, prev_feats, tiles, work)
        ring = None if strips else prev_feats.permute(0, 2, 3, 1).contiguous()  # (n, h, w, C), as select's
        scan = scan_window if numba.get_num_threads() > SERIAL_THREADS else scan_window_serial
        pairs = zip(tiles, queries)
        for t, qt in sorted(pairs, key=lambda p: (p[0].kx.start, p[0].ky.start)) if strips else pairs:
            T, RS = t.far.shape
            R, S = t.ky.stop - t.ky.start, t.kx.stop - t.kx.start
            corner = (t.qy.start, t.qx.start, t.qx.stop - t.qx.start, t.ky.start, t.kx.start, S, w)  # tile, window
            if strips:  # the window's keys (R, n, S, C) as they lie in its strip
                keys, fs, rs = strips[t.kx.start, t.kx.stop][t.ky], S, n * S
            else:  # copied (n, R, S, C), as select lays them out
                keys, fs, rs = _work(work, "keys", n, R, S, C), RS, S
                keys.copy_(ring[:, t.ky, t.kx])
            aff = _work(work, "window", T, n * RS)
            torch.matmul(qt, keys.view(n * RS, C).T, out=aff)
            scan(aff.numpy(), fs, rs, t.far.numpy(), t.runs.numpy(), *corner, v1, k1)
    vals, out = np.empty((N, k), np.float32), np.empty((N, k), np.int64)
    merge(v0, k0, v1, k1, vals, out)
    return torch.from_numpy(vals), torch.from_numpy(out)
