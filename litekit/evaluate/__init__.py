"""One command that scores any checkpoint of ``python -m litekit.train``.

    python -m litekit.evaluate SOURCE --checkpoint RUN.pt [--out RESULTS.json] ...

- `litekit.evaluate.cli`: the command line (``main``), its checks, the run;
- `litekit.evaluate.model`: the learner rebuilt from the checkpoint's model record, and
  options that contradict it refused;
- `litekit.evaluate.sources`: where tasks come from, one module per source (``folders``:
  class-per-folder episodes; ``orbit``: ORBIT's protocols). Its docstring says how to add
  one: a module and one entry in ``SOURCES``;
- `litekit.evaluate.report`: the printed table and the JSON document.

This package imports nothing when it is imported (``litekit.evaluate``, the attribute, is
the function `litekit.train.evaluate`; see ``litekit/__init__.py``): import its modules.
"""
