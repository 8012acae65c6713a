"""The tlbook.studies package: every name it exports, documented, and how its submodules import."""

from public_api import check_exports, check_imports

SUBMODULES = ['tuning', 'arms', 'label_budget', 'budget_tables', 'pitfalls', 'results', 'pool', 'runs']


def test_every_exported_name_is_importable_documented_and_every_public_name_exported():
    check_exports("tlbook.studies", SUBMODULES)


def test_submodules_import_each_other_directly_and_no_private_name():
    check_imports("tlbook.studies", SUBMODULES)
