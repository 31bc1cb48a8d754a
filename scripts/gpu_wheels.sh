#!/usr/bin/env bash
# Wheels that a bare GPU node without internet lacks, for its Python 3.12 (x86-64), into .whl/ (ignored by git):
# the node's image already has torch, transformers, accelerate, peft, numpy, pillow, opencv, scikit-image,
# matplotlib, pyyaml, tqdm, rich, httpx, pyarrow; codevl also needs pydantic, trl, datasets and DeepSpeed.
#   bash scripts/gpu_wheels.sh            # here, where PyPI can be reached
#   bash scripts/gpu_checks.sh            # there, in the repository root, with .whl/ copied along
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
# exact versions: the ones requirements/lock-cpu.txt tests here (one version of each, or pip refuses the set)
pin() { grep -iE "^${1//[-_]/[-_]}==" requirements/lock-cpu.txt | head -1; }
binary=(pydantic pydantic-core annotated-types typing-inspection trl datasets dill multiprocess hjson xxhash)
for name in "${binary[@]}"; do
  spec=$(pin "$name"); spec=${spec:-$name}
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}" \
    -d .whl "$spec"
done
# DeepSpeed publishes a source archive only: build its pure-Python wheel here (CUDA ops are compiled at run time)
spec=$(pin deepspeed); DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps -w .whl "${spec:-deepspeed}"
ls -la .whl
du -sh .whl
