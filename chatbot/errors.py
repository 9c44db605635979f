"""The framework's exception tree.

Every error a user can cause carries where it happened (file, line, key, value) so the CLI can
print one clear line instead of a traceback. HTTP status codes for these errors are assigned in one
place, ``chatbot.server.errors``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ChatbotError(Exception):
    """Base of every error the framework raises on purpose."""


@dataclass
class Location:
    """Where a problem sits in a project: file, line (1-based), the key and the bad value."""

    file: str | None = None
    line: int | None = None
    key: str | None = None
    value: object = None

    def describe(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return where


@dataclass
class ProjectError(ChatbotError):
    """A mistake in a bot project's files (YAML, domain, data, config).

    ``hint`` says what would be valid. ``str(error)`` is the one line the CLI prints.
    """

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None
    value: object = None
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        parts: list[str] = []
        where = Location(self.file, self.line).describe()
        if where:
            parts.append(f"{where}:")
        parts.append(self.message)
        if self.key is not None:
            parts.append(f"(key '{self.key}'")
            if self.value is not None:
                parts[-1] += f", value {self.value!r}"
            parts[-1] += ")"
        elif self.value is not None:
            parts.append(f"(value {self.value!r})")
        text = " ".join(parts)
        if self.hint:
            text += f". {self.hint}"
        return text

    # dataclass(eq=True) would make the exception unhashable; exceptions compare by identity.
    __hash__ = ChatbotError.__hash__


@dataclass
class ProjectErrors(ChatbotError):
    """Several project errors found in one pass (``chatbot data validate`` reports all of them)."""

    errors: list[ProjectError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    __hash__ = ChatbotError.__hash__


class ModelFileError(ChatbotError):
    """A model file that is missing, truncated, tampered with or of an unknown format."""


class TrainingError(ChatbotError):
    """Training data that cannot produce a model (too small, contradictory)."""


class ConfigError(ChatbotError):
    """An unknown store, lock, channel, policy or component name, or a bad setting."""


class ActionError(ChatbotError):
    """A custom action failed (timeout, refused connection, 5xx, bad response)."""

    def __init__(self, action_name: str, message: str) -> None:
        self.action_name = action_name
        super().__init__(f"action '{action_name}': {message}")


class ActionRejected(ChatbotError):
    """A custom action rejected itself (HTTP 400 from the action server)."""

    def __init__(self, action_name: str, message: str = "") -> None:
        self.action_name = action_name
        super().__init__(f"action '{action_name}' rejected execution {message}".strip())


class StoreUnavailable(ChatbotError):
    """The conversation store cannot be reached."""


class ConflictError(ChatbotError):
    """Two writers appended to one conversation at the same sequence number (a lost lock)."""


class LockTimeout(ChatbotError):
    """Waiting for a conversation's lock took longer than the lock store's ``wait_timeout``."""

    def __init__(self, conversation_id: str, waited: float) -> None:
        self.conversation_id = conversation_id
        self.waited = waited
        super().__init__(
            f"conversation '{conversation_id}': gave up waiting for its lock after {waited:.2f} s "
            "(the messages before it are still being handled; raise the lock store's "
            "wait_timeout if they are slow on purpose)"
        )
