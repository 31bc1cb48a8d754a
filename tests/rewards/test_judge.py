"""The judge path against a local OpenAI-compatible server: client behaviour (retries, failures, cache, images),
and the components that use it (TAPO step judge, TAPO process, answer judge, faithfulness judge)."""

from __future__ import annotations

import base64
import io
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rewards import JudgeClient, JudgeConfig, RewardSet, build_component, evaluate_faithfulness, reward_metrics
from rewards.faithfulness import FaithfulnessParams
from rewards.judge import image_part, parse_tagged_number, text_part
from tests.rewards.builders import crop, failed, ok, shown, task, trajectory
from tests.rewards.judge_server import JudgeServer


def config(server: JudgeServer, **kw: object) -> dict:
    return {"base_url": server.url, "model": "judge-model", "backoff_s": 0.0, "max_retries": 2, "timeout_s": 5.0,
            "api_key_env": "CODEVL_TEST_JUDGE_KEY", **kw}


def client(server: JudgeServer, **kw: object) -> JudgeClient:
    return JudgeClient(JudgeConfig(**config(server, **kw)))


MSG = [{"role": "user", "content": [text_part("hello")]}]


def test_success_request_shape_and_api_key(judge_server: JudgeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEVL_TEST_JUDGE_KEY", "sk-test")
    judge_server.responder = lambda body: (200, "SCORE: 0.5")
    reply = client(judge_server).complete(MSG)
    assert reply.ok and reply.text == "SCORE: 0.5" and reply.attempts == 1 and not reply.cached
    body = judge_server.requests[0]
    assert body["model"] == "judge-model" and body["messages"] == MSG and body["temperature"] == 0.0
    assert judge_server.headers[0]["Authorization"] == "Bearer sk-test"


def test_images_travel_as_downscaled_png_data_urls() -> None:
    part = image_part(np.zeros((100, 3000, 3), np.uint8), max_side=300)
    url = part["image_url"]["url"]
    assert part["type"] == "image_url" and url.startswith("data:image/png;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.size == (300, 10)


def test_retries_server_errors_then_succeeds(judge_server: JudgeServer) -> None:
    calls = {"n": 0}

    def flaky(body: dict) -> tuple[int, str]:
        calls["n"] += 1
        return (503, "overloaded") if calls["n"] < 3 else (200, "SCORE: 1")

    judge_server.responder = flaky
    c = client(judge_server)
    reply = c.complete(MSG)
    assert reply.ok and reply.attempts == 3 and c.stats["retries"] == 2


def test_failures_are_returned_never_raised(judge_server: JudgeServer) -> None:
    judge_server.responder = lambda body: (400, "bad request: no such model")
    reply = client(judge_server).complete(MSG)
    assert not reply.ok and reply.attempts == 1 and "HTTP 400" in (reply.error or "")  # not retried
    judge_server.responder = lambda body: (500, "down")
    reply = client(judge_server).complete(MSG)
    assert not reply.ok and reply.attempts == 3 and "after 3 attempt(s)" in (reply.error or "")
    judge_server.raw_reply = "not json"
    reply = client(judge_server).complete(MSG)
    assert not reply.ok and reply.attempts == 1 and "malformed reply" in (reply.error or "")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = JudgeClient(JudgeConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", backoff_s=0.0, max_retries=1))
    reply = dead.complete(MSG)
    assert not reply.ok and reply.attempts == 2 and "ConnectError" in (reply.error or "")


def test_timeouts_fail(judge_server: JudgeServer) -> None:
    judge_server.delay_s = 0.5
    reply = client(judge_server, timeout_s=0.1, max_retries=0).complete(MSG)
    assert not reply.ok and "Timeout" in (reply.error or "")


def test_cache_in_memory_and_on_disk(judge_server: JudgeServer, tmp_path: Path) -> None:
    judge_server.responder = lambda body: (200, "SCORE: 0.25")
    c = client(judge_server, cache_dir=str(tmp_path / "cache"))
    assert not c.complete(MSG).cached
    again = c.complete(MSG)
    assert again.cached and again.text == "SCORE: 0.25" and len(judge_server.requests) == 1
    fresh = client(judge_server, cache_dir=str(tmp_path / "cache"))  # a new process would see the disk cache
    assert fresh.complete(MSG).cached and len(judge_server.requests) == 1
    other = [{"role": "user", "content": [text_part("different")]}]
    assert not fresh.complete(other).cached and len(judge_server.requests) == 2
    judge_server.responder = lambda body: (500, "down")
    assert not client(judge_server).complete([{"role": "user", "content": "x"}]).ok  # failures are not cached
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_parse_tagged_number() -> None:
    assert parse_tagged_number("thinking...\nScore: 0.75", "SCORE", low=-1, high=1) == 0.75
    assert parse_tagged_number("SCORE: 1\nSCORE = -1", "SCORE", low=-1, high=1) == -1.0  # the last one
    assert parse_tagged_number("**SCORE:** 0.5", "SCORE", low=-1, high=1) == 0.5
    with pytest.raises(ValueError, match="no 'SCORE"):
        parse_tagged_number("looks fine", "SCORE", low=-1, high=1)
    with pytest.raises(ValueError, match="outside"):
        parse_tagged_number("SCORE: 3", "SCORE", low=-1, high=1)


def tapo_judge_set(server: JudgeServer, **kw: object) -> RewardSet:
    return RewardSet([build_component("answer_accuracy"),
                      build_component("tapo_tool", weight=0.5, params={"mode": "auto", "judge": config(server, **kw)})])


def test_tapo_judge_scores_steps_without_evidence_and_skips_redlines(judge_server: JudgeServer) -> None:
    def rubric(body: dict) -> tuple[int, str]:
        text = JudgeServer.user_text(body)
        assert "What is shown?" in text and body["messages"][0]["role"] == "system"
        return (200, "The crop shows the sign clearly.\nSCORE: 0.75") if "call 1 of" in text else (200, "SCORE: -0.5")

    judge_server.responder = rubric
    t = task(evidence=())
    tr = trajectory(t, [("a", crop((10, 10, 60, 60))),  # judged: 0.75
                        ("b", failed()),  # redline by rule, no call
                        ("c", ok()),  # nothing shown or printed: 0, no call
                        ("d", ok(stdout="found 3 circles"))])  # judged: -0.5
    (b,) = tapo_judge_set(judge_server).score([tr])
    c = b.components["tapo_tool"]
    assert c.status == "ok" and c.steps == [0.75, -1.0, 0.0, -0.5]
    assert c.info["reasons"] == ["judge", "error", "empty_output", "judge"]
    assert len(judge_server.requests) == 2
    first = next(r for r in judge_server.requests if "call 1 of" in JudgeServer.user_text(r))  # calls run concurrently
    assert len(JudgeServer.image_urls(first)) == 1  # the crop went as an image
    # total = 1 + 0.5 * mean([0.75, -1, 0, -0.5]) = 1 + 0.5 * (-0.1875)
    assert b.total == pytest.approx(1 - 0.09375)
    # with evidence boxes, auto mode uses the rules and never calls the judge
    tapo_judge_set(judge_server).score([trajectory(task(), [("a", crop((90, 30, 130, 70)))])])
    assert len(judge_server.requests) == 2


def test_tapo_judge_failures_are_recorded_and_excluded(judge_server: JudgeServer) -> None:
    t = task(evidence=())
    steps = [("a", crop((10, 10, 60, 60))), ("b", crop((20, 20, 80, 80)))]
    judge_server.responder = lambda body: (500, "judge down")
    b_fail, = tapo_judge_set(judge_server).score([trajectory(t, steps, tid="x")])
    c = b_fail.components["tapo_tool"]
    assert c.status == "failed" and c.value is None and c.contribution == 0.0
    assert "step 0: judge call failed after 3 attempt(s): HTTP 500" in (c.error or "")
    assert b_fail.total == 1.0 and b_fail.steps == [0.0, 0.0]  # accuracy still counts; the tool reward is out
    judge_server.responder = lambda body: (200, "I refuse to give a number")
    b_bad, = tapo_judge_set(judge_server, max_retries=0).score([trajectory(t, steps, tid="y")])
    assert b_bad.components["tapo_tool"].status == "failed" and "no 'SCORE" in (b_bad.components["tapo_tool"].error or "")
    judge_server.responder = lambda body: (200, "SCORE: 7")
    other_steps = [("a", crop((11, 10, 60, 60))), ("b", crop((21, 20, 80, 80)))]  # new requests (replies are cached)
    b_range, = tapo_judge_set(judge_server, max_retries=0).score([trajectory(t, other_steps, tid="z")])
    assert "outside [-1.0, 1.0]" in (b_range.components["tapo_tool"].error or "")
    m = reward_metrics([b_fail, b_bad, b_range])
    assert m["reward/tapo_tool/failed"] == 1.0 and "reward/tapo_tool/mean" not in m


def test_tapo_process_released_variant(judge_server: JudgeServer) -> None:
    judge_server.responder = lambda body: (200, "SCORE: 0.75")
    rs = RewardSet([build_component("tapo_process", params={"judge": config(judge_server), "max_images": 1})])
    tr = trajectory(task(), [("a", crop((90, 30, 130, 70))), ("b", crop((95, 35, 125, 65)))])
    no_tool = trajectory(task(), [], tid="n")
    b, b0 = rs.score([tr, no_tool])
    # one score per trajectory, the no-tool one included (released)
    assert b.total == 0.75 and b0.total == 0.75 and len(judge_server.requests) == 2
    (body,) = [r for r in judge_server.requests if "<code>" in JudgeServer.user_text(r)]  # calls run concurrently
    # the judge sees the image (the input), the ground truth, the full response and the first tool output
    assert len(JudgeServer.image_urls(body)) == 2  # 1 input + 1 output (max_images 1)
    text = JudgeServer.user_text(body)
    assert "Ground-truth answer: B" in text and "<answer>B</answer>" in text and "<code>" in text
    # out of [0, 1]: clamped (1.5 -> 1, -0.25 -> 0); in range: kept
    for reply, want in (("SCORE: 1.5", 1.0), ("SCORE: -0.25", 0.0), ("SCORE: 0.8", 0.8)):
        judge_server.responder = lambda body, r=reply: (200, r)
        (b,) = rs.score([trajectory(task(), [(f"code for {reply}", crop((1, 1, 9, 9)))])])  # distinct: no cache hit
        assert b.components["tapo_process"].status == "ok" and b.total == want
    # a failed call is recorded as failed, never 0
    judge_server.responder = lambda body: (200, "no score here")
    (b,) = rs.score([trajectory(task(), [("other code", crop((2, 2, 9, 9)))])])
    assert b.components["tapo_process"].status == "failed" and b.failed() == ["tapo_process"]


def test_answer_judge_and_its_failure_propagates_to_dependent_components(judge_server: JudgeServer) -> None:
    judge_server.responder = lambda body: (200, "VERDICT: 1") if "crimson" in JudgeServer.user_text(body) else (200, "VERDICT: 0")
    acc = build_component("answer_accuracy", params={"judge": config(judge_server, max_retries=0)})
    rs = RewardSet([acc, build_component("deepeyes_tool_bonus", params={"require_image": False})])
    t = task("red", "text")
    right = trajectory(t, [("a", ok())], answer="crimson", tid="r")
    wrong = trajectory(t, [("a", ok())], answer="blue", tid="w")
    exact = trajectory(t, [("a", ok())], answer="Red", tid="e")  # rules suffice: no call
    br, bw, be = rs.score([right, wrong, exact])
    assert (br.total, bw.total, be.total) == (2.0, 0.0, 2.0)
    assert br.components["answer_accuracy"].info["method"] == "judge" and len(judge_server.requests) == 2
    judge_server.responder = lambda body: (502, "bad gateway")
    t2 = task("green", "text")
    (bf,) = rs.score([trajectory(t2, [("a", ok())], answer="verdant", tid="f")])
    assert bf.components["answer_accuracy"].status == "failed"
    assert bf.components["deepeyes_tool_bonus"].status == "failed"  # it needed correctness
    assert "answer check failed" in (bf.components["deepeyes_tool_bonus"].error or "")
    assert bf.total == 0.0


def test_faithfulness_judge(judge_server: JudgeServer) -> None:
    judge_server.responder = lambda body: (200, "FAITHFUL: 1") if "Evidence to look for: sign" in JudgeServer.user_text(body) \
        else (200, "FAITHFUL: 0")
    t = task(evidence=[{"box": [100, 40, 120, 60], "label": "sign"}])
    t_nolabel = task(evidence=(), tid="t1")
    trs = [trajectory(t, [("a", ok(images=[shown((0, 0, 5, 5)), shown((5, 5, 9, 9))]))], tid="a"),
           trajectory(t_nolabel, [("a", crop((0, 0, 5, 5)))], tid="b")]
    report = evaluate_faithfulness(trs, FaithfulnessParams(mode="judge", judge=JudgeConfig(**config(judge_server))),
                                   correct=[True, True])
    assert [s.any_faithful for s in report.samples] == [True, False]
    assert [o.method for o in report.samples[0].outputs] == ["judge", "judge"]
    assert report.p_faithful_given_correct() == 0.5
    judge_server.responder = lambda body: (500, "down")
    report = evaluate_faithfulness(trs[:1], FaithfulnessParams(mode="judge", judge=JudgeConfig(**config(judge_server, max_retries=0, cache_dir=None, max_tokens=7))),
                                   correct=[True])
    assert report.samples[0].failed and report.samples[0].any_faithful is None and report.table()["faithful_correct"] == 0
