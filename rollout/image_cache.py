"""Each image processed once per engine: its pixel values and grid, looked up by content on every later turn.

An episode's prompt carries every image shown so far, so an engine that expands prompts itself (the HF engine)
would run the image processor on image k at every turn after k: O(turns x images) resizes and normalisations of
high-resolution images on the CPU, repeated for each of the G rollouts of a group. `ProcessedImages` keeps the
processed tensors per image, keyed by `image_key` (a hash of shape, dtype and bytes: a cropped or rotated copy is a
different image; an array object seen before is not hashed again), in a least-recently-used cache bounded in
bytes. The result equals processing the images together: Qwen's image processor resizes and patchifies each image on its own and concatenates them in order
(tested against `rollout.expand.process_images`).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from rollout.expand import process_images

MAX_KEYS = 65536  # remembered image objects (an id, a weak reference and a key each)


def image_key(image: Any) -> str:
    """A content key for an image array (shape, dtype and bytes)."""
    a = np.ascontiguousarray(np.asarray(image))
    h = hashlib.blake2b(digest_size=16)
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
    return h.hexdigest()


class ProcessedImages:
    """Per-image (pixel_values, image_grid_thw) for one processor, cached by content (thread-safe)."""

    def __init__(self, processor: Any, *, max_bytes: int = 1 << 30) -> None:
        self.processor = processor
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # id(image) -> (weak reference, key): an episode's prompt carries the same array objects every turn, so its
        # images are hashed once, not at every turn (hashing a full-resolution image takes milliseconds, on the
        # engine's generation thread). The weak reference tells a live object from a new one that reuses a freed
        # object's id, without keeping images alive; images are never changed in place.
        self._keys: OrderedDict[int, tuple[weakref.ref[Any], str]] = OrderedDict()

    def __call__(self, images: Sequence[Any]) -> tuple[Any, Any]:
        """(pixel_values, image_grid_thw) for `images` in order, as `process_images` gives, or (None, None)."""
        if not images:
            return None, None
        import torch

        keys = [self._key(im) for im in images]
        with self._lock:
            found = {k: self._items[k] for k in keys if k in self._items}
            for k in found:
                self._items.move_to_end(k)
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            first: dict[str, Any] = {}
            for k, im in zip(keys, images, strict=True):
                first.setdefault(k, im)
            pixels, grids = process_images(self.processor, [first[k] for k in todo])
            start = 0
            for k, grid in zip(todo, grids, strict=True):
                rows = int(grid.prod().item())  # patches of this image: t * h * w
                found[k] = (pixels[start:start + rows].clone(), grid[None].clone())
                start += rows
            with self._lock:
                for k in todo:
                    self._remember(k, found[k])
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        return (torch.cat([found[k][0] for k in keys]), torch.cat([found[k][1] for k in keys]))

    def _key(self, image: Any) -> str:
        with self._lock:
            known = self._keys.get(id(image))
        if known is not None and known[0]() is image:
            return known[1]
        key = image_key(image)
        try:
            ref = weakref.ref(image)
        except TypeError:  # a type without weak references: hashed every time
            return key
        with self._lock:
            self._keys[id(image)] = (ref, key)
            while len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        return key

    def _remember(self, key: str, item: tuple[Any, Any]) -> None:
        if key in self._items:
            return
        self._items[key] = item
        self._bytes += _nbytes(item)
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= _nbytes(old)


def _nbytes(item: tuple[Any, Any]) -> int:
    return int(item[0].numel() * item[0].element_size() + item[1].numel() * item[1].element_size())
