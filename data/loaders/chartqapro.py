"""ChartQAPro (Masry et al., 2025): 1948 questions over 1341 real-world charts, infographics and dashboards
(factoid, multiple choice, conversational, fact checking, hypothetical; some unanswerable), and ChartQAPro-T.

Get it: `huggingface-cli download ahmed-masry/ChartQAPro --repo-type dataset --local-dir ChartQAPro` on a machine
with internet (https://huggingface.co/datasets/ahmed-masry/ChartQAPro), then copy the folder here. Layout:
`data/test-00000-of-00001.parquet`, one row per item, columns

    Question       list of strings: one question, or the turns of a conversation (the last is asked)
    Answer         list of strings: the answer (the last entry is the one scored; earlier ones answer earlier turns)
    Question Type  "Factoid" | "Multi Choice" | "Conversational" | "Fact Checking" | "Hypothetical"
    image          the chart's encoded bytes (binary)
    Year           list of "YES"/"NO": whether each answer is a year (compared exactly)
    Paragraph      text that accompanies the chart ("" when none)

VLMEvalKit's `chartqapro.tsv` (columns index, image (base64), question, answer, year as Python lists written as
strings, question_type, paragraph) also loads. Pass the folder or a file. Items have no id: task ids are
`chartqapro-<row>` (0-based). The question carries the paragraph, the conversation so far and an instruction per
question type in the spirit of the benchmark's direct-answer prompts (a single word, number or phrase; "unanswerable"
when the chart does not tell; lists as ['a', 'b']). `metadata["category"]` is the question type.

ChartQAPro-T: CodeVision (arXiv 2512.03746) evaluates ChartQAPro under orientation changes, as it does OCRBench; no
transformed file was published (its repository and dataset pages hold only MVToolBench), so the variant is built
the way OCRBench's is: `transforms="all"` (`--transforms all`) adds the R90 / R180 / R270 / flip H / flip V copy of
every item, each requiring the inverse op; the benchmark figure is the mean over the original and the five copies.

Scoring (`metadata["scoring"] = "chartqapro"`, `rewards.chartqapro_scoring`): the published relaxed accuracy
(5% numeric tolerance, exact years, ANLS for text, list answers element-wise); no LLM judge is involved. The score
is fractional; the benchmark figure is the mean score.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, ClassVar

from data.loaders.base import Loader, LoaderError, decode_base64_image, image_cell_bytes, iter_parquet_rows, \
    progress_bar, take, write_image_bytes
from data.loaders.vlmevalkit import read_tsv
from rollout.task import Task

COLUMNS = ("Question", "Answer", "Question Type", "image", "Year")
TSV_COLUMNS = ("index", "question", "answer", "question_type", "year")
TYPES = ("Factoid", "Multi Choice", "Conversational", "Fact Checking", "Hypothetical")
_COMMON = ("If the chart does not let you answer, answer unanswerable. If there are several answers, list them as "
           "['Answer1', 'Answer2'].")
INSTRUCTIONS = {
    "Factoid": "Answer with a single word, number or phrase, without units unless the chart writes the value with one "
               "(million, m, billion, B, K). " + _COMMON,
    "Multi Choice": "Answer with the letter of the correct option only. " + _COMMON,
    "Conversational": "Answer the last question of the conversation with a single word, number or phrase, without "
                      "units unless the chart writes the value with one (million, m, billion, B, K). " + _COMMON,
    "Fact Checking": "Answer true or false. " + _COMMON,
    "Hypothetical": "Answer the hypothetical question with a single word, number or phrase. " + _COMMON,
}


def chartqapro_question(questions: list[str], answers: list[str], qtype: str, paragraph: str) -> str:
    """The text a model is asked: the paragraph, the conversation so far (conversational items), the question and
    the instruction for its type."""
    parts = [paragraph.strip()] if paragraph and paragraph.strip() else []
    if qtype == "Conversational" and len(questions) > 1:
        history = "\n".join(f"Q: {q}\nA: {a}" for q, a in zip(questions[:-1], answers[:-1], strict=False))
        parts.append(f"Conversation so far:\n{history}")
    parts.append(f"Question: {questions[-1]}")
    parts.append(INSTRUCTIONS[qtype])
    return "\n\n".join(parts)


def _listed(value: Any, where: str, field: str) -> list[str]:
    """A list cell (parquet) or a Python list written as a string (VLMEvalKit's TSV)."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise LoaderError(f"{where}: field {field} {value[:60]!r} is not a list") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise LoaderError(f"{where}: field {field} must be a non-empty list of strings, got {value!r}")
    return [str(v) for v in value]


def _tsv_getter(row: dict[str, Any]) -> Any:
    """Reads a TSV row by the parquet column names ("Question Type" -> "question_type")."""
    return lambda key: row.get(key.lower().replace(" ", "_"))


class ChartQAProLoader(Loader):
    name: ClassVar[str] = "chartqapro"
    description: ClassVar[str] = "ChartQAPro: diverse real-world chart QA (1948 items); --transforms all for ChartQAPro-T"
    homepage: ClassVar[str] = "https://huggingface.co/datasets/ahmed-masry/ChartQAPro"
    embeds_images: ClassVar[bool] = True

    def load(self, path: Path, *, image_dir: Path | None, limit: int | None, progress: bool,
             **options: Any) -> list[Task]:
        if options:
            raise LoaderError(f"chartqapro: unknown option(s) {', '.join(options)}; none are defined (transforms= "
                              "works for every loader)")
        if path.is_file():
            files = [path]
        else:
            files = sorted(path.glob("data/test-*.parquet")) or sorted(path.glob("*.parquet")) or \
                sorted(path.glob("*.tsv"))
        if not files:
            raise LoaderError(f"chartqapro: no data/test-*.parquet (or chartqapro.tsv) at {path}; expected the "
                              "ahmed-masry/ChartQAPro dataset folder")
        out_dir = image_dir or self.default_image_dir(files[0])
        tsv = files[0].suffix == ".tsv"
        rows: Any = read_tsv(files[0], TSV_COLUMNS) if tsv else iter_parquet_rows(files, list(COLUMNS))
        tasks = []
        for n, row in enumerate(progress_bar(take(rows, limit), progress, "chartqapro")):
            where = f"{files[0] if len(files) == 1 else path}: row {n}"
            get = _tsv_getter(row) if tsv else row.get
            questions = _listed(get("Question"), where, "Question")
            answers = _listed(get("Answer"), where, "Answer")
            year_cell = get("Year")  # empty or missing flags: no answer is a year (compared as numbers / text)
            years = _listed(year_cell, where, "Year") if year_cell not in (None, "", "[]") and len(year_cell) else []
            qtype = str(get("Question Type"))
            if qtype not in TYPES:
                raise LoaderError(f"{where}: field Question Type is {qtype!r}; expected one of {', '.join(TYPES)}")
            cell = get("image")
            if cell is None or cell == "":
                raise LoaderError(f"{where}: field image is empty")
            try:
                data = decode_base64_image(cell) if tsv else image_cell_bytes(cell)
                image = write_image_bytes(data, out_dir)
            except LoaderError as exc:
                raise LoaderError(f"{where}: field image: {exc}") from None
            paragraph = get("Paragraph")
            paragraph = "" if paragraph is None or paragraph != paragraph else str(paragraph)
            tasks.append(Task(
                id=f"chartqapro-{row['index'] if tsv else n}", images=[image],
                question=chartqapro_question(questions, answers, qtype, paragraph),
                answer=answers[-1], answer_type="text", source="chartqapro", split="test",
                metadata={"scoring": "chartqapro", "chartqapro_answers": answers, "year": years, "question_type": qtype,
                          "category": qtype, "task_type": "chartqapro"}))
        return tasks
