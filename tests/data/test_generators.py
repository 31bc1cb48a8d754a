"""Synthetic generators: deterministic by seed, and their ground truth is right (checked from the pixels)."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from data.generators import GENERATORS, generate_to_dir, get_generator
from data.generators.multi_tool import INVARIANT_CHARS
from data.orientation import inverse, map_box
from data.resolution import legible, model_scale
from data.task_file import read_tasks

# The contract's meaning of each required op, written with PIL directly (independent of data.orientation).
FIX = {
    "rotate90": lambda im: im.rotate(90, expand=True),
    "rotate270": lambda im: im.rotate(-90, expand=True),
    "rotate180": lambda im: im.rotate(180, expand=True),
    "flip_h": ImageOps.mirror,
    "flip_v": ImageOps.flip,
}


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("name", list(GENERATORS))
def test_same_seed_same_task_different_index_different_task(name: str) -> None:
    g = get_generator(name)
    a, b, c = g.make(3, seed=7), g.make(3, seed=7), g.make(4, seed=7)
    assert np.array_equal(_arr(a.images[0]), _arr(b.images[0]))
    assert (a.question, a.answer, a.evidence, a.required_ops, a.metadata) == (b.question, b.answer, b.evidence,
                                                                              b.required_ops, b.metadata)
    assert not (a.images[0].size == c.images[0].size and np.array_equal(_arr(a.images[0]), _arr(c.images[0])))
    assert g.make(3, seed=8).metadata != a.metadata or not np.array_equal(_arr(g.make(3, seed=8).images[0]),
                                                                          _arr(a.images[0]))


def test_generate_to_dir_is_the_same_with_one_or_two_workers(tmp_path: Path) -> None:
    one = generate_to_dir("orientation", 6, tmp_path / "one", seed=5, workers=1, progress=False)
    two = generate_to_dir("orientation", 6, tmp_path / "two", seed=5, workers=2, progress=False)
    assert one.count == two.count == 6
    assert one.path.read_text() == two.path.read_text()
    for row in map(json.loads, one.path.read_text().splitlines()):
        rel = row["images"][0]
        assert not Path(rel).is_absolute()
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    tasks = read_tasks(one.path)  # validates every row, image and box
    assert [t.id for t in tasks] == [f"orientation-5-{i:06d}" for i in range(6)]
    assert all(t.source == "synthetic/orientation" for t in tasks)


def test_config_and_name_errors_list_valid_choices() -> None:
    with pytest.raises(ValueError, match="valid generators: orientation, visual_search, multi_tool, symbolic"):
        get_generator("mazes")
    with pytest.raises(ValueError, match="unknown config key.*min_areafrac.*valid keys: .*min_area_frac"):
        get_generator("visual_search", {"min_areafrac": 0.1})
    with pytest.raises(ValueError, match="unknown transform 'rotate45'"):
        get_generator("orientation", {"transforms": ["rotate45"]})
    with pytest.raises(ValueError, match="does not depend on orientation"):
        get_generator("multi_tool", {"target_kinds": ["shape"]})


# ---- orientation ------------------------------------------------------------------------------------------------


def test_orientation_inverse_ops_restore_the_rendered_text() -> None:
    g = get_generator("orientation", {"small_min_side": 900, "small_max_side": 1300, "max_pixels": 300_000})
    seen_transforms, seen_kinds = set(), set()
    for i in range(40):
        s = g.make(i, seed=1)
        d = s.debug
        seen_transforms.add(d["transform"])
        seen_kinds.add(s.metadata["question_kind"])
        given = s.images[0]
        # the inverse op, then a crop when the text is too small to read at the model's input resolution
        crop = [] if s.metadata["legible_at_input"] else ["crop"]
        assert s.required_ops == ([] if d["transform"] == "none" else [inverse(d["transform"])]) + crop
        assert s.metadata["legible_at_input"] == legible(s.metadata["glyph_px"], given.size, 300_000)
        fixed = given
        for op in s.required_ops:
            if op != "crop":
                fixed = FIX[op](fixed)
        upright, bg = _arr(d["upright"]), _arr(d["background"])
        assert np.array_equal(_arr(fixed), upright), f"task {i}: the required ops do not restore the upright image"
        # The text's pixels are exactly where the ink mask says, all inside the text box, and visible.
        changed = np.any(upright != bg, axis=-1)
        ink = d["ink_mask"]
        assert changed.any() and not (changed & ~ink).any()
        x1, y1, x2, y2 = d["all_text_box_upright"]
        inside = np.zeros_like(ink)
        inside[y1:y2, x1:x2] = True
        assert not (ink & ~inside).any()
        ys, xs = np.nonzero(ink)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        # The evidence box is in the given image's coordinates: mapped back it is the upright text (line) box.
        ev = s.evidence[0]["box"]
        back = ev if d["transform"] == "none" else map_box(ev, s.required_ops[0], given.size)
        assert tuple(back) == tuple(float(v) for v in d["text_box_upright"])
        # The answer is what was written.
        lines = s.metadata["text_lines"]
        kind = s.metadata["question_kind"]
        if kind == "word":
            assert lines == [s.answer]
        elif kind == "line":
            assert lines[s.metadata["evidence_line"]] == s.answer
        elif kind == "number" and s.answer_type == "number":  # a price
            assert float(lines[s.metadata["evidence_line"]].split()[-1]) == s.answer
        elif kind == "number":  # a 4-digit code: exact text
            assert lines[s.metadata["evidence_line"]].split()[-1] == s.answer and len(s.answer) == 4
            assert s.metadata["exact_text"]
        else:
            assert s.choices[ord(s.answer) - 65] == lines[0].lower()
            assert "(A) " in s.question and "(D) " in s.question
    assert seen_transforms == {"none", "rotate90", "rotate180", "rotate270", "flip_h", "flip_v"}
    assert seen_kinds == {"word", "line", "number", "choice"}


# ---- visual search / multi-tool ---------------------------------------------------------------------------------


def _saturated(arr: np.ndarray) -> np.ndarray:
    f = arr.astype(np.float32) / 255
    mx, mn = f.max(axis=-1), f.min(axis=-1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0)
    return (sat > 0.45) & (mx > 0.3)


def _check_target(s, image: Image.Image) -> None:
    mask = s.debug["target_mask"]
    x1, y1, x2, y2 = s.evidence[0]["box"]
    assert mask.shape == (image.size[1], image.size[0]) and mask.any()
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2), "evidence box is not the target's box"
    # Saturated pixels are the target's or a look-alike's: none elsewhere (muted clutter only)
    outside = _saturated(_arr(image)) & ~mask
    for dx1, dy1, dx2, dy2 in s.metadata["distractor_boxes"]:
        outside[dy1:dy2, dx1:dx2] = False
    assert not outside.any()
    assert s.metadata["distractor_boxes"], "look-alikes keep the target from popping out by colour alone"


# Smaller scenes (and a proportionally smaller model input) keep these tests fast; the rules are the same.
SMALL_VS = {"min_side": 1000, "max_side": 1600, "max_pixels": 300_000}


def test_visual_search_evidence_box_holds_the_target_pixels() -> None:
    g = get_generator("visual_search", SMALL_VS)
    fracs, kinds, styles = [], set(), set()
    for i in range(12):
        s = g.make(i, seed=2)
        styles.add(s.metadata["clutter_style"])
        img = s.images[0]
        _check_target(s, img)
        # The pixels in the box are the pasted target: nothing drawn over it.
        x, y = s.debug["patch_xy"]
        patch = s.debug["patch"]
        alpha = np.asarray(patch.getchannel("A")) > 0
        region = _arr(img)[y : y + patch.size[1], x : x + patch.size[0]]
        assert np.array_equal(region[alpha], np.asarray(patch.convert("RGB"))[alpha])
        w, h = img.size
        frac = s.metadata["area_frac"]
        x1, y1, x2, y2 = s.evidence[0]["box"]
        assert frac == pytest.approx((x2 - x1) * (y2 - y1) / (w * h))
        if s.metadata["target_kind"] == "shape":  # CodeVision's scale: at most 0.01% of the image
            assert 0.9e-5 <= frac <= 1.05e-4, frac
        else:  # characters keep a legible minimum size, which raises their share (most in these small scenes)
            assert frac <= 6e-4, frac
        # not legible without a crop at the model's input resolution (max_pixels)
        assert not s.metadata["legible_at_input"] and s.metadata["target_seen_px"] < 10
        assert s.metadata["target_seen_px"] == pytest.approx(
            s.metadata["target"]["seen_basis_px"] * model_scale(img.size, SMALL_VS["max_pixels"]), abs=0.01)
        assert s.required_ops == ["crop"]
        kinds.add(s.metadata["target_kind"])
        fracs.append(frac)
        info = s.metadata["target"]
        if info["asks"] == "colour":
            assert s.choices[ord(s.answer) - 65] == info["colour"]
        elif info["asks"] == "shape":
            assert s.choices[ord(s.answer) - 65] == info["shape"]
        assert s.answer not in s.metadata["referent"] or info["asks"] in ("colour", "shape")
    assert kinds == {"shape", "glyph", "text"}
    assert min(fracs) < 6e-5 and max(fracs) > 8e-5  # spans the range
    assert len(styles) >= 2


def test_multi_tool_needs_the_orientation_fix_then_the_crop() -> None:
    g = get_generator("multi_tool", SMALL_VS)
    transforms = set()
    for i in range(8):
        s = g.make(i, seed=3)
        t = s.debug["transform"]
        transforms.add(t)
        op = inverse(t)
        assert s.required_ops == [op, "crop"]
        _check_target(s, s.images[0])
        fixed = FIX[op](s.images[0])
        assert np.array_equal(_arr(fixed), _arr(s.debug["upright"]))
        assert map_box(s.evidence[0]["box"], op, s.images[0].size) == tuple(float(v) for v in s.debug["upright_box"])
        if s.metadata["target_kind"] == "glyph":
            assert s.answer not in INVARIANT_CHARS[t]
        else:
            assert s.answer != s.answer[::-1]
    assert len(transforms) >= 3


# ---- symbolic ---------------------------------------------------------------------------------------------------


def _components(mask: np.ndarray) -> int:
    n, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return n - 1


def test_symbolic_answers_match_the_drawn_pixels() -> None:
    g = get_generator("symbolic")
    seen = set()
    for i in range(60):
        s = g.make(i, seed=4)
        kind = s.metadata["symbolic_kind"]
        seen.add(kind)
        arr = _arr(s.images[0]).astype(int)
        ink = (arr < 200).any(axis=-1)
        assert s.required_ops == []
        if kind == "counting":
            target = np.abs(arr - np.array(s.metadata["target_rgb"])).sum(-1) == 0
            assert _components(target) == s.answer
            assert len(s.evidence) == s.answer
        elif kind == "line_intersections":
            yb, yr = s.debug["yb"], s.debug["yr"]
            d = yb - yr
            assert int(np.sum(np.sign(d[1:]) != np.sign(d[:-1]))) == s.answer
            assert np.min(np.abs(d)) >= 3 * s.metadata["line_width"] + 12  # never ambiguous at a vertex
            blue = (arr[..., 2] == 255) & (arr[..., 0] == 0)
            red = (arr[..., 0] == 255) & (arr[..., 2] == 0)
            assert blue.any() and red.any()
        elif kind == "touching_circles":
            (x1, y1, r1), (x2, y2, r2) = s.debug["circles"]
            dist = np.hypot(x2 - x1, y2 - y1)
            touching = dist <= r1 + r2
            assert (s.answer == "Yes") == touching
            assert _components(ink) == (1 if touching else 2)
        elif kind == "overlapping_circles":
            colours = {tuple(c) for c in arr.reshape(-1, 3).tolist()} - {(255, 255, 255)}
            assert len(colours) == s.answer
            c, r = s.debug["centres"], s.debug["radius"]
            # Olympic-like: the rings form one chain of overlaps (each overlaps another; none coincide).
            near = {(a, b) for a in range(len(c)) for b in range(len(c))
                    if a != b and 0 < np.hypot(c[a][0] - c[b][0], c[a][1] - c[b][1]) < 2 * r}
            reached, todo = {0}, [0]
            while todo:
                a = todo.pop()
                for b in range(len(c)):
                    if (a, b) in near and b not in reached:
                        reached.add(b)
                        todo.append(b)
            assert len(reached) == len(c)
        else:
            assert _components(ink) == s.answer
            sq = s.debug["squares"]
            for (ax, ay, aside), (bx, by, bside) in zip(sq, sq[1:], strict=False):
                assert ax < bx and ay < by and bx + bside < ax + aside and by + bside < ay + aside
    assert seen == set(("counting", "line_intersections", "touching_circles", "overlapping_circles", "nested_squares"))


def test_hsv_helper_sanity() -> None:
    r, g, b = (int(v * 255) for v in colorsys.hsv_to_rgb(0.0, 0.2, 0.9))
    assert not _saturated(np.array([[[r, g, b]]], np.uint8)).any()
    assert _saturated(np.array([[[220, 30, 30]]], np.uint8)).all()


def test_orientation_items_test_the_transform_and_vary_their_text() -> None:
    """Redrawn when readable without the fix; small text needs a crop; several fonts; codes are exact text;
    choice distractors share letters with the answer."""
    from data.vocabulary import readable_without_fix

    assert readable_without_fix("OTTO", "flip_h") and readable_without_fix("BOX", "flip_v")
    assert readable_without_fix("SOS", "rotate180") and not readable_without_fix("SOS", "flip_v")
    assert not readable_without_fix("OTTO", "rotate90") and not readable_without_fix("planet", "flip_h")
    g = get_generator("orientation", {"transforms": ["flip_h", "flip_v", "rotate180"], "small_min_side": 900,
                                      "small_max_side": 1300, "max_pixels": 300_000})
    fonts, small, shared = set(), 0, 0
    for i in range(40):
        s = g.make(i, seed=4)
        m = s.metadata
        asked = m["text_lines"] if m["evidence_line"] < 0 else [m["text_lines"][m["evidence_line"]]]
        assert not any(readable_without_fix(t, m["transform"]) for t in asked), asked
        fonts.add(m["font"])
        small += m["small_text"]
        if m["small_text"]:
            assert not m["legible_at_input"] and "crop" in s.required_ops and m["glyph_px"] >= 9
        if s.answer_type == "choice":
            word = s.choices[ord(s.answer) - 65]
            shared += all(len(set(o) & set(word)) >= 2 for o in s.choices)
    assert len(fonts) >= 5 and 3 <= small <= 20 and shared >= 2


def test_codes_are_exact_text_answers() -> None:
    from rewards.answers import match_answer

    g = get_generator("orientation", {"question_kinds": ["number"], "transforms": ["none"], "small_text_share": 0})
    code = next(s for s in (g.make(i, seed=2) for i in range(40)) if s.answer_type == "text" and s.answer[0] == "0")
    task = code.to_task("c", ["x.png"], source="synthetic/orientation", split="train")
    assert match_answer(code.answer, task).correct
    assert not match_answer(str(int(code.answer)), task).correct  # "0427" is not 427


def test_symbolic_shapes_stay_inside_the_image() -> None:
    """Nothing drawn touches the border: no shape is cut off (counting a half-visible shape is ambiguous)."""
    g = get_generator("symbolic")
    for i in range(30):
        arr = _arr(g.make(i, seed=9).images[0])
        ink = np.any(arr < 250, axis=-1)
        assert not (ink[:2].any() or ink[-2:].any() or ink[:, :2].any() or ink[:, -2:].any()), i
