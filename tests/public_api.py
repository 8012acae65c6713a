"""What a tlbook module offers: the one definition the package tests and the API-page test share."""

import inspect


def defined_here(module) -> set[str]:
    """The public functions and classes ``module`` itself defines (not the ones it imports)."""
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    }
