#!/usr/bin/env bash
# Converts the Fashion-MNIST IDX files of Debian's dataset-fashion-mnist
# package into labelled image folders (one PNG per image, one folder per
# class) that amlrun-worker and torchvision's ImageFolder read:
#
#   DEST/train/<class>/<index>.png   (60000 images, 6000 per class)
#   DEST/test/<class>/<index>.png    (10000 images, 1000 per class)
#
# usage: scripts/fashion-mnist-to-folders.sh DEST [--per-class N] [--test-per-class N]
#   --per-class N       only the first N training images of each class
#   --test-per-class N  only the first N test images of each class (default: as --per-class)
#
# Needs only a Python 3 standard library (gzip, zlib, struct): PNG is written
# by hand, so no imaging package is required. Idempotent: a finished
# conversion is recognised by DEST/.complete and not redone.
set -euo pipefail

usage() {
  echo "usage: $0 DEST [--per-class N] [--test-per-class N]" >&2
  exit 2
}

[ $# -ge 1 ] || usage
dest="$1"
shift
per_class=0
test_per_class=""
while [ $# -gt 0 ]; do
  case "$1" in
    --per-class) [ $# -ge 2 ] || usage; per_class="$2"; shift 2 ;;
    --test-per-class) [ $# -ge 2 ] || usage; test_per_class="$2"; shift 2 ;;
    *) echo "$0: unknown argument '$1'" >&2; usage ;;
  esac
done
case "$per_class" in ''|*[!0-9]*) echo "$0: --per-class '$per_class': not a whole number" >&2; exit 2 ;; esac
test_per_class="${test_per_class:-$per_class}"
case "$test_per_class" in ''|*[!0-9]*) echo "$0: --test-per-class '$test_per_class': not a whole number" >&2; exit 2 ;; esac

source_dir="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ ! -f "$source_dir/train-images-idx3-ubyte.gz" ]; then
  echo "$0: $source_dir/train-images-idx3-ubyte.gz not found (install the Debian package dataset-fashion-mnist, or set FASHION_MNIST_DIR)" >&2
  exit 3
fi

stamp="train=$per_class test=$test_per_class source=$source_dir"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
  exit 0
fi

# /usr/bin/python3 is Debian's; any Python 3 works (standard library only).
python="$(command -v /usr/bin/python3 || command -v python3)"
"$python" - "$source_dir" "$dest" "$per_class" "$test_per_class" <<'PYTHON'
import gzip, os, shutil, struct, sys, zlib

source, dest, per_class, test_per_class = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
# Folder names sort in the dataset's label order, so class index = label.
classes = ["0_t-shirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat",
           "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]

def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]

def png_grey(width, height, pixels):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))

def convert(split, prefix, limit):
    (count, height, width), images = read_idx(os.path.join(source, f"{prefix}-images-idx3-ubyte.gz"))
    (label_count,), labels = read_idx(os.path.join(source, f"{prefix}-labels-idx1-ubyte.gz"))
    assert count == label_count
    out = os.path.join(dest, split)
    tmp = out + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in classes:
        os.makedirs(os.path.join(tmp, name))
    written = [0] * len(classes)
    size = width * height
    for i in range(count):
        label = labels[i]
        if limit and written[label] >= limit:
            continue
        with open(os.path.join(tmp, classes[label], f"{i:05d}.png"), "wb") as f:
            f.write(png_grey(width, height, images[i * size:(i + 1) * size]))
        written[label] += 1
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"{out}: {sum(written)} images in {len(classes)} classes")

os.makedirs(dest, exist_ok=True)
convert("train", "train", per_class)
convert("test", "t10k", test_per_class)
PYTHON
echo "$stamp" > "$dest/.complete"
