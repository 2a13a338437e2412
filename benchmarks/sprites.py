"""A 64×64×4 (RGBA) generator of real size for serving benchmarks, made by the project's own code.

    .venv/bin/python -m benchmarks.sprites OUT.onnx [--g-width 32] [--steps 20] [--images 64] [--size 64]

The maker lives with the tests' support code (``tests/support/sprites.py``); this is its command line.
"""

from tests.support.sprites import main

if __name__ == "__main__":
    main()
