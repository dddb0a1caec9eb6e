"""Recipes: the answers of a flow, validated, with secrets as references."""

from .draft import Draft, FieldValue
from .model import FLOWS, MODEL_BY_FLOW, SCHEMA_VERSION, CaiRecipe, KataRecipe, RecipeModel, json_schema
from .problems import Problem, RecipeError
from .redaction import REDACTOR, Redactor
from .secrets import SecretRef, SecretUnavailable, resolve_secret
from .yaml_io import LoadedRecipe, dumps_recipe, load_recipe, loads_recipe, save_recipe

__all__ = [
    "FLOWS",
    "MODEL_BY_FLOW",
    "REDACTOR",
    "SCHEMA_VERSION",
    "CaiRecipe",
    "Draft",
    "FieldValue",
    "KataRecipe",
    "LoadedRecipe",
    "Problem",
    "RecipeError",
    "RecipeModel",
    "Redactor",
    "SecretRef",
    "SecretUnavailable",
    "dumps_recipe",
    "json_schema",
    "load_recipe",
    "loads_recipe",
    "resolve_secret",
    "save_recipe",
]
