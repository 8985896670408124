#!/usr/bin/env bash
# The GPU check, for a session lent a CUDA machine: one prepared command, about 5 minutes on an H100/H200.
#
# The machine has torch, torchdiffeq, numpy, scipy, scikit-learn and pytest, but not POT, and no network.
# Here, once, fetch POT's wheel for its Python 3.12:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl pot==0.9.7.post1
# Then run `bash scripts/gpu_check.sh` there, carrying .whl. It runs the library's tests with the CUDA
# ones (tests/test_gpu.py, skipped on machines without a GPU) and times training on CPU and GPU
# (scripts/time_devices.py). Logs and times.json go to $OUT (default artifacts/gpu).
set -uo pipefail
OUT=${OUT:-artifacts/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, ot; assert torch.cuda.is_available(), 'torch sees no CUDA device'; \
print('torch', torch.__version__, 'POT', ot.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt" || exit 1
# The library's suites (the app's and the browser's need streamlit, which the machine lacks).
timeout 330 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_training.py tests/test_images.py \
    tests/test_invariants.py tests/test_gaussian_gft.py tests/test_cli.py 2>&1 | tee "$OUT/pytest.txt"
timeout 200 python3 scripts/time_devices.py --steps 200 --out "$OUT/times.json" 2>&1 | tee "$OUT/times.txt"
