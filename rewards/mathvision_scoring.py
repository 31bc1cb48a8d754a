"""MATH-Vision's published answer extraction and scoring (`evaluation/evaluate.py` and `evaluation/utils.py` of
github.com/mathllm/MATH-V), re-implemented rule by rule; no LLM judge is involved in the official evaluation.

Extraction (`mathvision_extract`) from the response: a response ending in " X." / " (X)." or starting with "X\\n" /
"(X)\\n" / "(X) X\\n" is the letter X; a number after the last "is " is taken; without `\\boxed{`, the text after
"the final answer is" / "the answer is" / "the correct answer is" / "the answer should be" (also capitalised) up to
the line or sentence end; with several `\\boxed{`, the last. Then `find_math_answer`: lower case, the content of the
(greedy) last `oxed{...}`, the part after the last "=" or "\\approx", LaTeX spacing, `\\text`, `\\left/\\right`,
degrees and some units removed, `_strip_string` (MATH's normaliser: `tfrac/dfrac` -> `frac`, `$`, `\\%` and
spaces removed, `0.5` -> `\\frac{1}{2}`, `a/b` -> `\\frac{a}{b}`), and `(a)` -> `a`.

Comparison (`mathvision_equal`, the official `is_equal`): lower case; equal after stripping; equal after tuples
`(a, b)` / lists `[a, b]` have their elements evaluated and rounded to 2 places; or both sides evaluate to numbers
that are equal rounded to 2 decimal places. The official code evaluates with `latex2sympy2`; here a small LaTeX
evaluator covers numbers, `\\frac`, `\\sqrt`, `\\pi`, `\\cdot`/`\\times`, `^`, + - * /, `$` and implicit products,
exactly (rationals) until a root or pi makes it a float, and stops at an unmatched `}` as latex2sympy does. Each of
the 3040 published test answers, given as the response, gets the official verdict (3034 right; the official code
itself rejects 6 of its own answers, such as "$\\frac{90}{23}^{\\circ}$"). On 48,000 generated responses
(numbers, LaTeX, letters, fragments): the same verdict on all but 16, all malformed text ("6.0.d", "3\\pi.dd") that
latex2sympy reads up to the first stray character and accepts, where this evaluator rejects; never the reverse.
An item is correct when the extraction equals the answer letter or, for multiple choice, the text of the correct
option.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from fractions import Fraction

_FLAGS = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fix_fracs(s: str) -> str:
    parts = s.split("\\frac")
    out = parts[0]
    for sub in parts[1:]:
        out += "\\frac"
        if sub[:1] == "{":
            out += sub
            continue
        if len(sub) < 2:
            return s
        a, b = sub[0], sub[1]
        if b != "{":
            out += "{" + a + "}{" + b + "}" + sub[2:]
        else:
            out += "{" + a + "}" + b + sub[2:]
    return out


def _fix_a_slash_b(s: str) -> str:
    if len(s.split("/")) != 2:
        return s
    a, b = s.split("/")
    try:
        ia, ib = int(a), int(b)
    except ValueError:
        return s
    return "\\frac{" + str(ia) + "}{" + str(ib) + "}" if s == f"{ia}/{ib}" else s


def _fix_sqrt(s: str) -> str:
    if "\\sqrt" not in s:
        return s
    parts = s.split("\\sqrt")
    out = parts[0]
    for sub in parts[1:]:
        out += ("\\sqrt{" + sub[0] + "}" + sub[1:]) if sub and sub[0] != "{" else ("\\sqrt" + sub)
    return out


def _strip_string(s: str) -> str:
    """MATH's `_strip_string` as MATH-Vision uses it."""
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace("$", "")
    s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2:
        s = s.split("=")[-1]
    if len(s.split("\\approx")) == 2:
        s = s.split("\\approx")[-1]
    if "sqrt" in s:
        s = _fix_sqrt(s)
    s = s.replace(" ", "")
    if "sqrt" in s:
        s = _fix_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _fix_a_slash_b(s)


def find_math_answer(s: str) -> str:
    """MATH-Vision's `find_math_answer` (see the module docstring)."""
    s = s.lower().replace("{}", "")
    found = re.findall(r"oxed{(.*)}", s, flags=re.S)
    ans = found[-1] if found else s
    if ans.find("}") != -1 and (ans.find("{") == -1 or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"), ("\n", ""),
                     ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""), ("\\right", ""),
                     ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""), ("{units}", ""), ("units", ""),
                     ("{km}", ""), ("km", "")):
        ans = ans.replace(old, new)
    return _strip_string(ans)


def mathvision_extract(response: str) -> str:
    """The model answer MATH-Vision's `evaluate` reads from a response."""
    answer = response.strip()
    for c in "ABCDE":
        if answer.endswith((f" {c}.", f" ({c}).")) or answer.startswith((f"{c}\n", f"({c})\n", f"({c}) {c}\n")):
            answer = c
    tail = answer.split("is ")[-1].rstrip(".")
    if _is_number(tail):
        answer = tail
    if "oxed{" not in answer:
        for flag in _FLAGS:
            for f in (flag, flag.replace("the", "The")):
                raw = answer
                answer = answer.split(f)[-1].strip()
                if f in raw:
                    answer = answer.split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    answer = find_math_answer(answer)
    for x in "abcde":
        answer = answer.replace(f"({x})", x).replace("{" + x + "}", x)
    return answer.rstrip(".").lstrip(":").strip()


_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_EXPONENT = 4096  # exact powers up to this (3^1009 is a published denominator); beyond: not a number


def _eval_node(node: ast.AST) -> Fraction | float:
    """Exact rational arithmetic where possible (as sympy), floats once a root or pi is involved."""
    if isinstance(node, ast.Expression):
        return _eval_node(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_node(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        base, exp = _eval_node(node.left), _eval_node(node.right)
        if isinstance(exp, Fraction) and exp.denominator == 1 and isinstance(base, Fraction):
            if abs(exp) > MAX_EXPONENT:
                raise ValueError("exponent too large")
            return base ** int(exp)
        return float(base) ** float(exp)
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        return _BIN[type(node.op)](_eval_node(node.left), _eval_node(node.right))
    if isinstance(node, ast.Name) and node.id in ("pi", "e"):
        return math.pi if node.id == "pi" else math.e
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "sqrt" and len(node.args) == 1:
        return math.sqrt(_eval_node(node.args[0]))
    raise ValueError("not a number")


def latex_value(text: str) -> float | None:
    """The value of a LaTeX number or simple expression ("\\frac{1}{2}", "2\\sqrt{3}", "3\\pi"), or None."""
    s = text.strip().replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace(" ", "").replace("$", "")
    depth = 0
    for i, ch in enumerate(s):  # a closing brace without its opening one ends the expression (as latex2sympy reads)
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            s = s[:i]
            break
    if not s:
        return None
    for _ in range(8):  # nested \frac / \sqrt, innermost first
        s2 = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s2 = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s2)
        s2 = re.sub(r"\^\{([^{}]*)\}", r"^(\1)", s2)
        if s2 == s:
            break
        s = s2
    s = s.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*").replace("^", "**")
    s = s.replace("{", "(").replace("}", ")")
    s = re.sub(r"(?<=[\d)])(?=[(a-z])|(?<=\))(?=[\d.])", "*", s)  # implicit products: 2sqrt(3), 3pi, (1/2)12
    s = re.sub(r"(?<=pi)(?=[\d(a-z])", "*", s)
    if re.search(r"[^0-9a-z.+\-*/()]", s) or re.search(r"[a-z]+", s.replace("sqrt", "").replace("pi", "")):
        return None
    try:
        return float(_eval_node(ast.parse(s, mode="eval")))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None


def _eval_tuple(s: str) -> str:
    parts = s[1:-1].split(",")
    if len(s) < 2 or len(parts) < 2 or (s[0], s[-1]) not in (("(", ")"), ("[", "]")):
        return s
    out = []
    for p in parts:
        if "infty" in p or p in ("a", "-a"):
            out.append(p)
            continue
        v = latex_value(p)
        if v is None:
            return s
        out.append(str(round(v, 2)))
    return s[0] + ",".join(out) + s[-1]


def mathvision_equal(a: str, b: str) -> bool:
    """MATH-Vision's `is_equal` (see the module docstring for the evaluator it uses in place of latex2sympy)."""
    a, b = a.lower(), b.lower()
    if not a.replace(" ", "") or not b.replace(" ", ""):
        return False
    if a.strip() == b.strip():
        return True
    a, b = _eval_tuple(a), _eval_tuple(b)
    if a == b:
        return True
    va, vb = latex_value(a), latex_value(b)
    return va is not None and vb is not None and round(va, 2) == round(vb, 2)


def mathvision_correct(response: str, answer: str, options: list[str] | None) -> bool:
    """Correct when the extracted answer equals the answer, or (multiple choice) the correct option's text."""
    got = mathvision_extract(response)
    value = ""
    if options and len(answer) == 1 and 0 <= ord(answer.upper()) - ord("A") < len(options):
        value = str(options[ord(answer.upper()) - ord("A")])
    return mathvision_equal(answer, got) or mathvision_equal(value, got)
