"""``python -m lamina.serve MODEL_DIR [--host H] [--port P] [--runtime torch|onnx]``: what ``lamina serve`` runs."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lamina.serve", description="Serve a Lamina model over HTTP.")
    parser.add_argument("model_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--runtime", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--threads", type=int, default=None, help="threads per prediction (default: the runtime's)")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    from lamina.errors import LaminaError
    from lamina.serve import serve

    try:
        serve(args.model_dir, args.host, args.port, args.runtime, log_level=args.log_level, threads=args.threads)
    except LaminaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
