"""What training and serving share, importing neither of them nor torch: the reproducibility contract
(``contract``: seeded noise, labels, uint8 conversion, tensor names, ONNX metadata), PNG encoding and grids
(``imaging``) and atomic file writes (``files``).

Data flows one way — data → ``training`` → export → ``models/`` → ``service`` — and both ends import this
package, never each other (``tests/test_layering.py`` checks it).
"""
