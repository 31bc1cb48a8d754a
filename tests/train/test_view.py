"""`codevl view`: the static HTML report of evaluation, RL and SFT runs; rendered in headless Chromium (Debian's
`chromium` package; the browser tests are skipped, saying so, where it is not installed). The browser test takes
some seconds: each page load starts a browser, and it loads the page four times (three filters, one screenshot)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.train.eval_fixture import eval_run  # noqa: F401 - the shared evaluation-run fixture
from train.cli import main
from train.report.html import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; "
                                    ".ci/run installs it when run as root)")


def _chromium(*args: str) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          "--allow-file-access-from-files", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _shown(dom: str) -> list[str]:
    """Ids of the episode sections the page's script left visible (no `hidden` attribute)."""
    return [m.group(2) for m in re.finditer(r'<section class="ep" ([^>]*)>\s*<h3>([^ ]+) ', dom)
            if "hidden" not in m.group(1)]


def test_eval_report_holds_code_images_boxes_rewards_and_the_task_table(eval_run: Path, tmp_path: Path) -> None:
    page = write_report(eval_run, tmp_path / "r" / "report.html").read_text()
    assert page.count('<section class="ep"') == 6 and page.count('<tr class="eprow"') == 6
    assert 'class="k">print</span>' not in page and '<span class="nb">print</span>' in page  # Pygments classes
    # t0's crop is drawn on its input as the traced box, the evidence as a dashed box
    assert '<rect class="crop" x="10.0" y="10.0" width="40.0" height="30.0"' in page
    assert page.count('<rect class="evidence" x="10.0" y="10.0" width="40.0" height="30.0"') == 2  # t0 and t1
    assert "ZeroDivisionError: division by zero" in page and 'class="badge status-error"' in page
    assert 'href="../../run/trajectories/images/' not in page
    imgs = re.findall(r'<img class="out" src="([^"]+)"', page)
    assert len(imgs) == 2 and all((tmp_path / "r" / src).is_file() for src in imgs)  # relative links resolve
    assert "<td>codevision_must_use</td><td>step</td>" in page and "total = episode" in page
    assert "accuracy</th><th>n</th></tr><tr><td>overall</td><td></td><td class=num>50.0%</td>" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_embedded_report_is_one_file(eval_run: Path, tmp_path: Path) -> None:
    page = write_report(eval_run, tmp_path / "one.html", embed_images=True).read_text()
    assert page.count('src="data:image/png;base64,') == 2 and page.count('href="data:image/png;base64,') == 6


@needs_chromium
def test_chromium_renders_images_code_and_applies_filters_from_the_url(eval_run: Path, tmp_path: Path) -> None:
    report = write_report(eval_run, tmp_path / "report.html")
    dom = _chromium("--dump-dom", f"file://{report}#correct=no")
    assert 'data-ready="1"' in dom  # the script ran
    assert sorted(_shown(dom)) == ["t2#0", "t4#0", "t5#0"]  # the three wrong answers
    assert re.search(r'id="shown-count">3<', dom)
    dom = _chromium("--dump-dom", f"file://{report}#type=ocr&rmin=1.05")
    assert sorted(_shown(dom)) == ["t0#0", "t1#0"]  # ocr tasks, reward 1.1 each (answer 1 + format 0.1)
    dom = _chromium("--dump-dom", f"file://{report}#finish=stopped")
    assert _shown(dom) == ["t5#0"]

    shot = tmp_path / "shot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1000,1500", f"file://{report}#q=t0")
    im = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert im.shape == (1500, 1000, 3)
    assert len(np.unique(im.reshape(-1, 3), axis=0)) > 200  # text, tables, images: not a blank page
    def near(rgb: tuple[int, int, int], tol: int = 12) -> int:
        return int((np.abs(im - np.array(rgb)).max(axis=2) <= tol).sum())
    assert near((40, 40, 90)) > 500  # t0's input image loaded from its relative link (its dark evidence block)
    assert near((209, 36, 47), 30) > 50  # the step-0 crop box drawn over it (#d1242f)
    assert near((26, 127, 55), 30) > 50  # the evidence box and the "correct" mark (#1a7f37)


def _rl_run(eval_run: Path, root: Path) -> Path:
    (root / "rollouts").mkdir(parents=True)
    shutil.copytree(eval_run / "trajectories" / "images", root / "rollouts" / "images")
    for step in (5, 10):
        shutil.copy(eval_run / "trajectories" / "eval.jsonl", root / "rollouts" / f"step_{step:06d}.jsonl")
    rows = [f'{{"step": {s}, "loss": {1 / s}, "reward/total/mean": {s / 10}, "reward/format/mean": 1.0, '
            f'"tools/any_call_rate": 0.5, "kl": 0.01}}' for s in range(1, 11)]
    (root / "metrics.jsonl").write_text("\n".join(rows) + "\n")
    (root / "config.yaml").write_text("policy: tiny\n")
    return root


def test_rl_run_report_links_plots_labels_steps_and_says_what_it_left_out(eval_run: Path, tmp_path: Path) -> None:
    run = _rl_run(eval_run, tmp_path / "rl")
    page = write_report(run, max_episodes=4).read_text()
    assert "rl run at" in page and "2 trajectory file(s), 12 episode(s)" in page
    assert "showing 4 of 12 episodes" in page and page.count('<section class="ep"') == 4
    assert page.count("RL step 5") == 2 and page.count("RL step 10") == 2  # spread over both files
    for name in ("loss", "reward", "tool_rates", "policy"):
        assert f'<img src="plots/{name}.png"' in page and (run / "plots" / f"{name}.png").is_file()
    assert "policy: tiny" in page


def test_sft_run_report_has_plots_and_no_episodes(tmp_path: Path, capsys) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.0, "eval/loss": 1.5}\n')
    assert main(["view", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "sft run" in page and '<img src="plots/loss.png"' in page and '<section class="ep"' not in page
    assert f"file://{(tmp_path / 'report.html').resolve()}" in capsys.readouterr().out


@pytest.mark.parametrize(("make", "code", "fragment"), [
    (lambda p: None, 2, "does not exist"),
    (lambda p: p.mkdir(), 2, "nothing to show"),
    (lambda p: (p.mkdir(), (p / "trajectories").mkdir(), (p / "trajectories/x.jsonl").write_text("{nope\n{}\n")), 1,
     "x.jsonl:1: not valid JSON"),
    (lambda p: (p.mkdir(), (p / "trajectories").mkdir(), (p / "trajectories/x.jsonl").write_text('{"id": 1}\n')), 1,
     "x.jsonl:1: not a saved trajectory"),
])
def test_view_errors_name_the_file_and_exit_with_the_documented_code(tmp_path: Path, capsys, make, code: int,
                                                                    fragment: str) -> None:
    target = tmp_path / "run"
    make(target)
    assert main(["view", str(target)]) == code
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_demo_layout_rollouts_and_summary(eval_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "demo"
    shutil.copytree(eval_run / "trajectories", run / "trajectories")
    (run / "trajectories" / "eval.jsonl").rename(run / "trajectories" / "rollouts.jsonl")
    (run / "summary.json").write_text('{"tasks": 6, "sft_losses": [6.5, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.25], '
                                      '"rollout": {"episodes": 6}}')
    page = write_report(run).read_text()
    assert "rollouts run at" in page and page.count('<section class="ep"') == 6
    assert "<td>sft_losses</td><td>9 values: 6.5000, 6.0000, ... 0.2500</td>" in page
    assert "<td>rollout.episodes</td><td>6</td>" in page
