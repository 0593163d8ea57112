#!/usr/bin/env bash
# Prepare what the GPU machine (device tool, kind nvidia-h200: Python 3.12, torch 2.11, no network) lacks:
#   benchmarks/gpu/wheels/  cp312 manylinux wheels of resnetlib's dependencies missing there, with their own
#                           missing dependencies (pip resolves them for the target; the ones the machine's
#                           image already holds, KINDS.md's list, are dropped again)
#   benchmarks/gpu/data/    the four Fashion-MNIST .gz files (~30 MB), for the schedule section
# Both folders are git-ignored and travel with `run`'s carry list; together they must stay under 64 MiB
# with the working tree (checked at the end). Run from anywhere, on a machine with network: bash fetch_wheels.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WHEELS="$HERE/wheels"
DATA="$HERE/data"
PIP="${PIP:-python3 -m pip}"
FASHION="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"

# What resnetlib needs that the machine lacks (issue 12), at versions tested here.
WANTED=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        papermill==2.7.0 nbformat==5.11.1 nbconvert==7.17.2 ipykernel==7.4.0 nbval==0.11.0
        pycocotools==2.0.11)
# Already on the machine (KINDS.md, "Python packages already there"): never carried.
PRESENT="absl_py accelerate aiohttp aiosignal anyio attrs certifi charset_normalizer click cloudpickle
contourpy coverage cycler filelock fonttools frozenlist fsspec h11 httpcore httpx idna iniconfig jinja2 joblib
kiwisolver markdown markupsafe matplotlib mpmath multidict networkx numpy packaging pandas pillow pip pluggy
psutil pygments pyparsing pytest python_dateutil pytz pyyaml regex requests rich scipy seaborn setuptools
six sympy torch torchvision tqdm triton typing_extensions tzdata urllib3 wheel yarl pytest_xdist execnet
lxml markdown_it_py mdurl propcache protobuf tabulate"

rm -rf "$WHEELS" && mkdir -p "$WHEELS" "$DATA"
$PIP download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d "$WHEELS" "${WANTED[@]}"
for whl in "$WHEELS"/*.whl; do
    name="$(basename "$whl" | cut -d- -f1 | tr 'A-Z.-' 'a-z__')"
    for present in $PRESENT; do
        if [ "$name" = "$present" ]; then rm -f "$whl"; fi
    done
done
rm -f "$WHEELS"/nvidia_* "$WHEELS"/cuda_*  # never carry CUDA libraries: the machine has its own

cp "$FASHION"/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz "$DATA"/
echo "wheels: $(ls "$WHEELS" | wc -l) files, $(du -sh "$WHEELS" | cut -f1); data: $(du -sh "$DATA" | cut -f1)"
REPO="$(cd "$HERE/../.." && pwd)"
TREE_KB=$(cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 du -ck 2>/dev/null | tail -1 | cut -f1)
TOTAL_KB=$(( TREE_KB + $(du -sk "$WHEELS" | cut -f1) + $(du -sk "$DATA" | cut -f1) ))
echo "upload: about $(( TOTAL_KB / 1024 )) MiB of the 64 MiB limit (working tree + wheels + data)"
[ "$TOTAL_KB" -lt $(( 64 * 1024 )) ] || { echo "over the device tool's 64 MiB limit" >&2; exit 1; }
