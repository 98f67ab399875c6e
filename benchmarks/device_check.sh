#!/bin/sh
# The GPU checks of the scale issue in one run, from the repository root of a
# machine with a CUDA device and numpy, scipy, scikit-learn and torch
# installed (skvdae itself is read from the working tree):
#   1. the tests marked gpu (they skip without CUDA, so this fails loudly
#      instead when torch sees no device);
#   2. the 1e6 loop of bench_scale.py fitted on the CPU and then on the GPU
#      of the same machine, in one invocation (the ratio is printed).
# About 2 minutes on an H200 machine; run it as
#   sh benchmarks/device_check.sh
set -e
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "
import numpy, scipy, sklearn, torch
print('torch', torch.__version__, 'numpy', numpy.__version__, 'scipy',
      scipy.__version__, 'scikit-learn', sklearn.__version__)
assert torch.cuda.is_available(), 'torch sees no CUDA device'
print(torch.cuda.get_device_name(0))
"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_embedder.py tests/test_sampler.py
python3 benchmarks/bench_scale.py --device cpu cuda "$@"
