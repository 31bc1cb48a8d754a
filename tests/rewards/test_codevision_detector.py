"""CodeVision's released operation detector (`ops_source: released`) against hand-derived expectations.

Each expectation follows a line of ByteDance-BandAI/CodeVision @ e098588, verl/utils/reward_score/tool_use_judge.py
(`heuristic_parse` = `_extract_crop_boxes_from_ast` + `_regex_literal_crops`, `_rotations_from_code`,
`_flips_from_code`, `_other_transforms_from_code`), quoted in the comment. The set-level tests score the shipped
released-code set with `ops_source: released` on every tool-use component and compare with
agent_loop.py `_compute_tool_reward_for_sample` computed by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rewards import reward_set_from_config
from rewards.codevision_detector import detect
from rewards.components.codevision_code import CodeVisionCodeEmerge
from rewards.context import ScoringContext
from tests.rewards.builders import failed, ok, op, shown, task, trajectory


@pytest.mark.parametrize("code, ops, boxes", [
    # `_regex_literal_crops` / AST: a literal tuple is a crop with that box; "crop" is appended `if crop_boxes`
    ("r = image.crop((10, 20, 110, 220))", ("crop",), ((10.0, 20.0, 110.0, 220.0),)),
    # `_build_env_before` replays earlier assignments: x1, y1 = 10, 20; w = 100 -> (10, 20, 110, 220)
    ("x1, y1 = 10, 20\nw = 100\nr = image.crop((x1, y1, x1 + w, y1 + 2 * w))", ("crop",), ((10.0, 20.0, 110.0, 220.0),)),
    # `image.size` is not evaluable (`_safe_eval_node` returns None for attributes): no box, so no crop at all
    ("w, h = image.size\nr = image.crop((0, 0, w // 2, h // 2))", (), ()),
    # assignments on the crop's own line are not replayed (`if ln >= line_no: break`)
    ("b = (0, 0, 10, 10); c = image.crop(b)", (), ()),
    # int/round/max/min calls: (int(10.7), round(20.26, 1), max(30, 40), min(50, 60)) = (10, 20.3, 40, 50)
    ("b = (int(10.7), round(20.26, 1), max(30, 40), min(50, 60))\nc = image.crop(b)", ("crop",), ((10.0, 20.3, 40.0, 50.0),)),
    # `tuple(box)` of a name: `[float(a) for a in args]` fails on a list -> None; the earlier `crop(box)` counts
    ("box = [1, 2, 3, 4]\nc = image.crop(box)\nd = image.crop(tuple(box))", ("crop",), ((1.0, 2.0, 3.0, 4.0),)),
    # `_dedup_boxes` rounds to 6 decimals: (1.5, 2, 3, 4) and (1.5, 2.0, 3, 4) are one box
    ("c = image.crop((1.5, 2, 3, 4))\nd = image.crop((1.5, 2.0, 3, 4))", ("crop",), ((1.5, 2.0, 3.0, 4.0),)),
    # boxes are literal: negative / past-the-border coordinates are kept as written
    ("c = image.crop((-5, 0, 10, 500))", ("crop",), ((-5.0, 0.0, 10.0, 500.0),)),
    # `.rotate(<expr>)`: angle % 360 within 5 degrees of 90 / 180 / 270 (`near(..., tol=5.0)`)
    ("r = image.rotate(90, expand=True)", ("rotate90",), ()),
    ("r = image.rotate(-90)", ("rotate270",), ()),  # -90 % 360 = 270
    ("r = image.rotate(86)", ("rotate90",), ()),  # |86 - 90| <= 5
    ("r = image.rotate(45)", (), ()),
    ("r = image.rotate(angle)", (), ()),  # `_safe_eval_numeric` has no names
    # `np\.rot90\(\s*[^,\s)]+\s*(?:,\s*k\s*=\s*([-+]?\d+))?`: a positional k is not read (k = 1)
    ("r = np.rot90(a, 3)", ("rotate90",), ()),
    ("r = np.rot90(a, k=-1)", ("rotate270",), ()),  # -1 % 4 = 3
    # `transpose\(\s*Image\.ROTATE_90\s*\)`: the `Image.Transpose.ROTATE_90` spelling is not matched
    ("r = image.transpose(Image.ROTATE_270)", ("rotate270",), ()),
    ("r = image.transpose(Image.Transpose.ROTATE_90)", (), ()),
    ("r = cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)", ("rotate270",), ()),
    # `_flips_from_code`: ImageOps.mirror / FLIP_LEFT_RIGHT, ImageOps.flip / FLIP_TOP_BOTTOM only
    ("m = ImageOps.mirror(image)", ("flip_h",), ()),
    ("m = image.transpose(Image.FLIP_TOP_BOTTOM)", ("flip_v",), ()),
    ("m = np.fliplr(a)\nn = cv2.flip(a, 1)", (), ()),
    # ImageEnhance factor > 1.05 -> `_up`; `.resize\(\s*\(\s*[^\)]+\)\s*\)` needs the size tuple alone
    ("r = ImageEnhance.Contrast(image).enhance(2.0).resize((100, 100))", ("contrast_up", "resize"), ()),
    ("r = image.resize((w * 2, h * 2), Image.LANCZOS)", (), ()),
    ("r = cv2.resize(a, (100, 100))", (), ()),
    # grayscale: `.convert('L')` and COLOR_BGR2GRAY / COLOR_RGB2GRAY only
    ("g = image.convert('L')", ("grayscale",), ()),
    ("g = image.convert('LA')\nh = cv2.cvtColor(a, cv2.COLOR_RGBA2GRAY)", (), ()),
    # convertScaleAbs: alpha 1.5 > 1.05 -> contrast_up; beta -10 < -0.5 -> brightness_down
    ("b = cv2.convertScaleAbs(a, alpha=1.5, beta=-10)", ("contrast_up", "brightness_down"), ()),
    # the patterns read comments too
    ("g = image.copy()  # image.rotate(180)", ("rotate180",), ()),
])
def test_detector_follows_the_released_heuristics(code: str, ops: tuple[str, ...], boxes: tuple) -> None:
    found = detect(code)
    assert found.ops == ops
    assert found.boxes == boxes


CODE_SET = Path("configs/rewards/codevision_code.yaml")


def released_code_set() -> Any:
    """configs/rewards/codevision_code.yaml with `ops_source: released` on every component that reads ops."""
    data = yaml.safe_load(CODE_SET.read_text())
    from rewards.registry import component_class

    for entry in data["components"]:
        if "ops_source" in component_class(entry["name"]).Params.model_fields:
            entry["params"] = {**entry.get("params", {}), "ops_source": "released"}
    return reward_set_from_config(data, source=str(CODE_SET))


def test_released_source_restores_the_released_op_reading() -> None:
    """S_req {rotate90, crop}, E = (100, 40, 120, 60). Step 0 runs `np.rot90(np.array(image), 3)`: really a
    clockwise turn (trace: rotate270), but the released pattern ignores the positional k and reads rotate_90.
    Step 1 crops (90, 40, 130, 60): IoU 400 / 800 = 0.5.

    released (`_mandatory_reward`): r_mand = |{rotate90}| / 2 + 0.5 / 2 = 0.75; `_exact_match_reward`: used core
    {rotate90, crop} == expected -> 0.1; c_usage = 2 - max(2, 2) = 0; r_spur = 0 (an orientation op is required).
    trace (default): used {rotate270, crop}: r_mand = 0 + 0.5 / 2 = 0.25, r_exact 0."""
    t = task(required=["rotate90", "crop"])
    steps = [("r = np.rot90(np.array(image), 3)", ok([op("rotate270")], [shown((0, 0, 200, 100), ["rotate270"])])),
             ("c = image.crop((90, 40, 130, 60))", ok([op("crop", (90, 40, 130, 60))], [shown((90, 40, 130, 60))]))]
    tr = trajectory(t, steps, protocol="codevision")
    (rel,) = released_code_set().score([tr])
    assert rel.value("codevision_code_mandatory") == pytest.approx(0.75)
    assert rel.value("codevision_code_exact") == 1.0
    assert rel.value("codevision_code_spurious") == 0.0
    (default,) = reward_set_from_config(yaml.safe_load(CODE_SET.read_text())).score([tr])
    assert default.value("codevision_code_mandatory") == pytest.approx(0.25)
    assert default.value("codevision_code_exact") == 0.0
    # total (released) = 1 acc + 0.1 * 0 (fmt: no <think>) + 0.75 + 0.1 - 0 = 1.85
    assert rel.value("codevision_code_format") == 0.0
    assert rel.total == pytest.approx(1.85)


def test_released_source_literal_boxes_failed_blocks_and_gate() -> None:
    """S_req {crop}, E = (100, 40, 120, 60) on a 200 x 100 image.

    Step 0 raised after `c = image.crop((100, 40, 120, 160))`: the released loop parsed it before running it, so
    it is a call and its box counts, unclipped: IoU = 400 / (20 * 120 = 2400) = 1/6 (clipped to the image it
    would be 400 / 1200 = 1/3). Step 1 computes its box from `image.size`: no box, so the released reading sees
    no crop there. r_mand = 1/6 / 1 = 0.1667 >= 0.1: no gate; r_exact: {crop} == {crop} -> 0.1; emerge: step 1's
    `.convert('L')` is `grayscale` (non-core), correct -> 0.2; c_usage = 2 - max(2, 1) = 0."""
    t = task(required=["crop"])
    steps = [("c = image.crop((100, 40, 120, 160))\nraise ValueError", failed(line=2)),
             ("w, h = image.size\nc = image.crop((w // 2, 40, w // 2 + 20, 60)).convert('L')",
              ok([op("crop", (100, 40, 120, 60)), op("convert")], [shown((100, 40, 120, 60))]))]
    tr = trajectory(t, steps, protocol="codevision")
    (rel,) = released_code_set().score([tr])
    assert rel.value("codevision_code_mandatory") == pytest.approx(1 / 6)
    assert rel.value("codevision_code_accuracy") == 1.0
    assert rel.value("codevision_code_exact") == 1.0
    assert rel.value("codevision_code_emerge") == 1.0
    assert rel.value("codevision_code_usage_cost") == 0.0
    # the same trajectory with a wrong crop only: r_mand = 0 < 0.1 gates r_acc (`r_acc *= r_mandatory`)
    wrong = trajectory(t, [("c = image.crop((0, 0, 10, 10))", ok([op("crop", (0, 0, 10, 10))]))],
                       protocol="codevision")
    (g,) = released_code_set().score([wrong])
    assert g.value("codevision_code_mandatory") == 0.0
    assert g.value("codevision_code_accuracy") == 0.0


def test_released_source_emerge_counts_every_non_core_name() -> None:
    """`_emerging_tool_bonus`: `used_set - core_ops` non-empty and correct. `ImageOps.autocontrast` is detected as
    `autocontrast`; `cv2.resize(a, (w, h))` is not detected at all (the resize pattern needs `.resize((`)."""
    t = task(required=["crop"])
    comp = CodeVisionCodeEmerge({"ops_source": "released"})
    yes = trajectory(t, [("b = ImageOps.autocontrast(image)", ok([op("enhance")]))], protocol="codevision")
    no = trajectory(t, [("b = cv2.resize(a, (100, 100))", ok([op("resize")]))], protocol="codevision")
    assert comp.score(yes, ScoringContext()).value == 1.0
    assert comp.score(no, ScoringContext()).value == 0.0
    assert CodeVisionCodeEmerge().score(no, ScoringContext()).value == 1.0  # the trace's resize counts by default
