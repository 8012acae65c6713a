"""Loads the notebook check's tolerance plugin (tests/nbval_tolerance.py) for every pytest run
in this repository, so `pytest --nbval book/*.ipynb` compares numbers as the README describes."""
pytest_plugins = ["nbval_tolerance"]
