#!/usr/bin/env bash
# Builds every function for Lambda (arm64, provided.al2023) with cargo-lambda and zig from the
# tools virtualenv, zips each `bootstrap`, and prints the sizes against the 5 MB goal.
#   infra/package.sh            every function, release profile (what `make deploy` uploads)
#   infra/package.sh --check    one function, debug profile: proves the cross toolchain (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv-tools/bin:$PATH"
# The arm64 standard library comes from rustup (static.rust-lang.org). Exit 3 says it could
# not be installed, so CI can tell a missing download from a broken build.
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
   && ! rustup target add aarch64-unknown-linux-gnu; then
  echo "package: cannot install the aarch64-unknown-linux-gnu target (rustup could not download it)" >&2
  exit 3
fi

if [[ "${1:-}" == "--check" ]]; then
  cargo lambda build --arm64 -p forgot-password --output-format zip
  functions=(forgot-password)
  export SIZE_GOAL=none  # a debug build: its size says nothing
else
  mapfile -t functions < <(ls functions)
  cargo lambda build --release --arm64 --output-format zip "${functions[@]/#/-p=}"
fi

# Sizes, and a check that each bootstrap really is an arm64 ELF (e_machine 0xB7 = AArch64).
python3 - "${functions[@]}" <<'PY'
import os, struct, sys, zipfile
goal, over = (None if os.environ.get("SIZE_GOAL") == "none" else 5 * 1024 * 1024), 0
print(f"{'function':<18} {'zip':>10} {'bootstrap':>10}")
for name in sys.argv[1:]:
    path = f"{os.environ.get('CARGO_TARGET_DIR') or 'target'}/lambda/{name}/bootstrap.zip"
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("bootstrap")
        head = z.open(info).read(20)
    if head[:4] != b"\x7fELF" or struct.unpack_from("<H", head, 18)[0] != 0xB7:
        sys.exit(f"{name}: bootstrap is not an arm64 executable")
    size = os.path.getsize(path)
    over += goal is not None and size >= goal
    print(f"{name:<18} {size / 2**20:7.2f} MB {info.file_size / 2**20:7.2f} MB")
sys.exit(f"{over} zip(s) at or above the 5 MB goal" if over else None)
PY
[[ "${SIZE_GOAL:-}" == none ]] && echo "arm64 debug build checked (no size goal)" || echo "every zip is under 5 MB"
