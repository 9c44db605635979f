"""Reading a bot project folder (Rasa 3.x layout) into typed data, with errors naming file:line.

``load_project(root)`` reads everything and raises ``ProjectErrors`` listing every problem;
``check_project(root)`` also validates that the data only uses what the domain declares.
"""

from chatbot.project.config import ComponentConfig, ProjectConfig
from chatbot.project.config_reader import read_config
from chatbot.project.domain import (
    DEFAULT_ACTIONS,
    DEFAULT_INTENTS,
    Domain,
    Entity,
    Form,
    Intent,
    Origin,
    ResponseVariation,
    SessionConfig,
    Slot,
    SlotMapping,
)
from chatbot.project.domain_reader import domain_from_dict, domain_to_dict, read_domain
from chatbot.project.endpoints import Credentials, EndpointBlock, Endpoints
from chatbot.project.endpoints_reader import read_credentials, read_endpoints
from chatbot.project.loader import check_project, load_project
from chatbot.project.nlu_reader import parse_annotated_text, read_nlu
from chatbot.project.project import Project
from chatbot.project.stories import Story
from chatbot.project.story_reader import read_stories
from chatbot.project.training_data import NLUData, NLUExample
from chatbot.project.validation import validate_project
from chatbot.project.yaml_io import line_of, load_yaml

__all__ = [
    "DEFAULT_ACTIONS",
    "DEFAULT_INTENTS",
    "ComponentConfig",
    "Credentials",
    "Domain",
    "EndpointBlock",
    "Endpoints",
    "Entity",
    "Form",
    "Intent",
    "NLUData",
    "NLUExample",
    "Origin",
    "Project",
    "ProjectConfig",
    "ResponseVariation",
    "SessionConfig",
    "Slot",
    "SlotMapping",
    "Story",
    "check_project",
    "domain_from_dict",
    "domain_to_dict",
    "line_of",
    "load_project",
    "load_yaml",
    "parse_annotated_text",
    "read_config",
    "read_credentials",
    "read_domain",
    "read_endpoints",
    "read_nlu",
    "read_stories",
    "validate_project",
]
