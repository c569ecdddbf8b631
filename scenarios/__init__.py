"""matchday scenarios: the model of a match day, its loader and the catalogue of scenario files."""

from scenarios.budgets import BudgetItem, Budgets, DrBudget, Threshold, parse_threshold
from scenarios.catalogue import catalogue, find_scenario
from scenarios.loader import dump_scenario, load_budgets, load_scenario
from scenarios.model import SCHEMA_VERSION, Scenario
from scenarios.yaml_source import InputError, Problem

__all__ = [
    "BudgetItem", "Budgets", "DrBudget", "InputError", "Problem", "SCHEMA_VERSION", "Scenario",
    "Threshold", "catalogue", "dump_scenario", "find_scenario", "load_budgets", "load_scenario",
    "parse_threshold",
]
