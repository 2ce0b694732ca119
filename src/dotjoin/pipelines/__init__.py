"""One package per roadmap project: pure ``transforms.py`` + a ``pipeline.run(...)`` that wires them."""
