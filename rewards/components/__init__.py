"""The shipped reward components; importing this package registers them all (`rewards.registry`).

| module | components |
| --- | --- |
| accuracy | answer_accuracy |
| format | format |
| execution | exec_success, exec_error |
| codevision_paper | codevision_must_use, codevision_exact_set, codevision_suggested_tool, codevision_turn_penalty, codevision_poor_reasoning, codevision_inappropriate_tool |
| codevision_code | codevision_code_accuracy, codevision_code_mandatory, codevision_code_necessity, codevision_code_exact, codevision_code_emerge, codevision_code_usage_cost, codevision_code_spurious |
| tapo | tapo_tool, tapo_process |
| deepeyes | deepeyes_accuracy, deepeyes_format_error, deepeyes_tool_bonus |
| pyvision_rl | pyvision_tool_bonus |
| pixel_reasoner | pixel_reasoner_accuracy, pixel_reasoner_curiosity, pixel_reasoner_extra_calls |
| faithfulness | faithful_crop |
"""

from rewards.components import (  # noqa: F401
    accuracy,
    codevision_code,
    codevision_paper,
    deepeyes,
    execution,
    faithfulness,
    format,
    pixel_reasoner,
    pyvision_rl,
    tapo,
)
