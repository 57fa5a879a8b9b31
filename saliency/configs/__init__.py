"""Every stage's settings as torch-free dataclasses (see :mod:`saliency.settings`).

The command line builds its flags from these, the study runner its TOML tables, and the
stages record them in ``RUN/config.json``: one name per setting everywhere.
"""
