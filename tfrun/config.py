"""Config models and loading: `tfrun.hcl` files from the live root down, then `stack.hcl`.

Each file is validated on its own (so an unknown key or a wrong type names the file that has
it), then the files are merged, nearer file winning and maps merging key by key, and the
result is validated once more as a whole (so a missing required value names the root file).

Long on purpose: every config key is one model field with its validator, and the models
only make sense read together.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tfrun import config_errors, hcl, tfargs
from tfrun.durations import parse_duration
from tfrun.errors import ConfigError
from tfrun.files import write_atomically
from tfrun.hcl import parse_file, parse_text

ROOT_FILE = "tfrun.hcl"
STACK_FILE = "stack.hcl"
DEFAULT_KEY = "{env}/{region}/{stack}.tfstate"
KEY_FIELDS = frozenset({"env", "region", "stack", "account_id", "repo"})
PROTECTED_BY_DEFAULT = frozenset({"prod", "production"})
TERRAFORM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# In an HCL string, `$${` and `%%{` stand for a literal `${` and `%{`; an unescaped one starts
# an interpolation or a directive. (python-hcl2 keeps both as written.)
_TEMPLATE_MARK = re.compile(r"(?P<literal>\$\$\{|%%\{)|(?P<template>\$\{|%\{)")


def _check_key_template(key: str | None) -> str | None:
    """A state key template: a relative path of text and `{field}`s, whatever the fields hold.
    Checked on the template with each field standing for a plain word, so a slash, `..` or an
    empty segment in the text is caught before any stack is rendered."""
    if key is None:
        return key
    try:
        parts = list(string.Formatter().parse(key))
    except ValueError as exc:
        raise _key_error(key, f"is malformed ({exc})") from None
    sample = []
    for text, name, spec, conversion in parts:
        if "{" in text or "}" in text:  # `{{` or `}}`: str.format's literal braces
            raise _key_error(key, "has a brace that is not part of a {field}")
        sample.append(text)
        if name is None:
            continue
        written = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        if name not in KEY_FIELDS:
            raise _key_error(key, f"uses {{{written}}}, which names no field")
        if conversion or spec:
            raise _key_error(key, f"uses {{{written}}}: a field takes no conversion or format")
        sample.append("field")
    problem = key_path_problem("".join(sample))
    if problem:
        raise _key_error(key, problem)
    return key


def key_path_problem(key: str) -> str | None:
    """What makes `key` no relative path in the bucket, or None: the rule for a template's
    text, and for a rendered key, whose fields may hold a slash or nothing at all."""
    if key.startswith("/"):
        return "starts with '/'"
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        return "has an empty, '.' or '..' path segment"
    return None


def _key_error(key: str, problem: str) -> ValueError:
    allowed = ", ".join("{" + f + "}" for f in sorted(KEY_FIELDS))
    return ValueError(
        f"the state key {json.dumps(key)} {problem}. A state key is a relative path in the "
        f'bucket such as "{DEFAULT_KEY}", of text and the fields {allowed}'
    )


KeyTemplate = Annotated[str | None, AfterValidator(_check_key_template)]
RoleArn = Annotated[
    str | None, Field(pattern=r"^arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,128}$")
]


def _check_duration(text: str | None) -> str | None:
    if text is not None:
        parse_duration(text)
    return text


Duration = Annotated[str | None, AfterValidator(_check_duration)]


class _Model(BaseModel):
    # defer_build: a warm run takes its configs from the cache (ParseCache) and never needs a
    # model's validator, whose building is most of this module's import time.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class StateConfig(_Model):
    bucket: str | None = None
    region: str | None = None
    dynamodb_table: str | None = None
    key: KeyTemplate = None
    encrypt: bool | None = None
    profile: str | None = None
    # S3-native locking (terraform >= 1.10), alone or beside dynamodb_table while migrating.
    use_lockfile: bool | None = None
    # The bucket's default encryption (SSE-KMS) that `tfrun bootstrap` sets; else SSE-S3.
    kms_key_id: str | None = Field(default=None, min_length=1)
    # The state account's role, assumed for the backend and every remote-state read.
    role_arn: RoleArn = None


class Environment(_Model):
    account_id: str | None = None
    profile: str | None = None
    protected: bool | None = None
    region: str | None = None
    # Set to false to forbid applies from a laptop entirely (CI only).
    laptop_apply: bool | None = None
    # The role terraform assumes in this environment's account (else auth.role_name's).
    role_arn: RoleArn = None
    external_id: str | None = None

    @field_validator("account_id")
    @classmethod
    def _account_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError(f"an AWS account id is 12 digits, not {value!r}")
        return value


class AuthConfig(_Model):
    """The role-assumption chain (docs/auth.md)."""

    # The role in each environment's account: arn:aws:iam::<account_id>:role/<role_name>.
    role_name: str | None = Field(default=None, pattern=r"^[\w+=,.@/-]{1,64}$")
    # The source identity on a laptop (the SSO profile); CI uses its ambient credentials.
    laptop_profile: str | None = None
    # Check each identity a run needs before terraform starts (default: when roles are used).
    preflight: bool | None = None
    # The role a CI job assumes with its OIDC token, and the token's audience.
    ci_role_arn: RoleArn = None
    ci_audience: str | None = None


class RetryConfig(_Model):
    attempts: int | None = Field(default=None, ge=1, le=10)
    backoff_s: float | None = Field(default=None, ge=0, le=300)


class GraphConfig(_Model):
    """How the graph is built from the .tf files (docs/graph.md)."""

    # SSM parameters as contracts: a read of a parameter another stack writes is an edge.
    ssm_edges: bool | None = None
    # A run whose selection holds a read tfrun cannot evaluate refuses (exit 4).
    strict: bool | None = None


def _check_commands(commands: list[str], known: frozenset[str]) -> list[str]:
    for command in commands:
        if command not in known:
            raise ValueError(
                f"{json.dumps(command)} is not a terraform command this can name; it can name "
                + ", ".join(sorted(known))
            )
    return commands


class ExtraArguments(_Model):
    """`extra_arguments "NAME" { commands = [...]  arguments = [...] }`: flags added to
    terraform's command line for those commands (docs/configuration.md)."""

    commands: list[str]
    arguments: list[str]

    @model_validator(mode="after")
    def _allowed(self) -> ExtraArguments:
        _check_commands(self.commands, tfargs.CONFIGURABLE_COMMANDS)
        for command in self.commands:
            for argument in self.arguments:
                problem = tfargs.configured_argument_problem(command, argument)
                if problem is not None:
                    raise ValueError(f"the argument {json.dumps(argument)} for {command} {problem}")
        return self


# What a hook runs: a program and its arguments, never a shell.
Argv = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class BeforeHook(_Model):
    """`before_hook "NAME" { commands = [...]  execute = [...] }`."""

    commands: list[str]
    execute: Argv

    @field_validator("commands")
    @classmethod
    def _commands(cls, value: list[str]) -> list[str]:
        return _check_commands(value, tfargs.HOOK_COMMANDS)


class AfterHook(BeforeHook):
    """`after_hook "NAME" { ... }`; `run_on_error`: also after the command failed."""

    run_on_error: bool = False


VAR_FILE_FIELDS = frozenset({"env", "region"})


def _check_var_file_name(name: str) -> str:
    """A file name to look for in each folder: text and `{env}`/`{region}`, no folder."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(name) if field is not None]
    except ValueError as exc:
        raise ValueError(f"the var file name {json.dumps(name)} is malformed ({exc})") from None
    unknown = [field for field in fields if field not in VAR_FILE_FIELDS]
    if unknown:
        raise ValueError(
            f"the var file name {json.dumps(name)} uses {{{unknown[0]}}}; a var file name may "
            "use {env} and {region} only"
        )
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise ValueError(
            f"the var file name {json.dumps(name)} is not a file name: tfrun looks for it in "
            "every folder from the live root down to the stack, so it names no folder"
        )
    return name


VarFileName = Annotated[str, AfterValidator(_check_var_file_name)]


class FileConfig(_Model):
    """What any one config file may say; everything optional, nothing unknown."""

    repo: str | None = None
    state: StateConfig | None = None
    environments: dict[str, Environment] | None = None
    tags: dict[str, str] | None = None
    terraform_version: str | None = None
    providers: dict[str, str] | None = None
    endpoint: str | None = None
    default_region: str | None = None
    retry: RetryConfig | None = None
    graph: GraphConfig | None = None
    auth: AuthConfig | None = None
    # Each terraform command's limit (a duration: "30m"); --timeout wins.
    timeout: Duration = None
    # How many runs' logs and plans .tfrun/runs keeps.
    keep_runs: int | None = Field(default=None, ge=1, le=1000)
    # Stack-level settings (allowed in any file; usually in stack.hcl).
    owner: str | None = None
    dependencies: list[str] | None = None
    remote_state: dict[str, str] | None = None
    # Values a provisional plan reads where an upstream's planned output is unknown until
    # apply: {read name: {output: value}} (docs/new-environment.md).
    mock_outputs: dict[str, dict[str, Any]] | None = None
    consumers: list[str] | None = None
    env: str | None = None
    region: str | None = None
    profile: str | None = None
    key: KeyTemplate = None
    # Added to terraform's command line, searched up the tree, run around a command: by
    # name, a nearer file's entry replacing a farther one's of the same name whole.
    extra_arguments: dict[str, ExtraArguments] | None = None
    var_files: list[VarFileName] | None = None
    before_hook: dict[str, BeforeHook] | None = None
    after_hook: dict[str, AfterHook] | None = None

    @field_validator("remote_state", "mock_outputs")
    @classmethod
    def _remote_state_names(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Each name becomes `data "terraform_remote_state" "<name>"`, read in the stack's own
        # code as data.terraform_remote_state.<name>: it must be a Terraform name.
        for name in value or {}:
            if not TERRAFORM_NAME.fullmatch(name):
                raise ValueError(
                    f"the name {json.dumps(name)} cannot name a data source: a Terraform name "
                    "starts with a letter or an underscore and has only letters, digits, "
                    "underscores and dashes"
                )
        return value

    @field_validator("providers")
    @classmethod
    def _provider_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        # Each name is a provider's local name in the generated required_providers block.
        for name in value or {}:
            if not TERRAFORM_NAME.fullmatch(name):
                raise ValueError(
                    f"{json.dumps(name)} is no provider name: a provider's name (aws, "
                    "kubernetes, my-provider) starts with a letter or an underscore and has only "
                    "letters, digits, underscores and dashes"
                )
        return value


# Keys written as labelled blocks (`before_hook "fmt" { ... }`): maps by name, merged one
# level deep (a nearer file's entry replaces the farther one's of the same name whole).
NAMED_KEYS = ("extra_arguments", "before_hook", "after_hook")
# Keys that describe one stack and make no sense in a file shared by many.
_STACK_ONLY = ("dependencies", "remote_state", "mock_outputs", "key")
# Keys that describe the whole repository and belong only in the root file.
_ROOT_ONLY = ("repo", "state", "environments", "endpoint", "retry", "keep_runs", "auth", "graph")


class Config(_Model):
    """The merged, effective config of one stack."""

    repo: str | None
    state: StateConfig
    environments: dict[str, Environment]
    tags: dict[str, str]
    terraform_version: str | None
    providers: dict[str, str]
    endpoint: str | None
    default_region: str | None
    retry: RetryConfig
    graph: GraphConfig
    auth: AuthConfig
    timeout: str | None
    keep_runs: int | None
    owner: str | None
    dependencies: list[str]
    remote_state: dict[str, str]
    mock_outputs: dict[str, dict[str, Any]]
    consumers: list[str]
    env: str | None
    region: str | None
    profile: str | None
    key: str | None
    extra_arguments: dict[str, ExtraArguments]
    var_files: list[str]
    before_hook: dict[str, BeforeHook]
    after_hook: dict[str, AfterHook]
    # Which file set each named entry: {"before_hook.fmt": "/…/live/tfrun.hcl"}.
    origins: dict[str, str]
    sources: tuple[Path, ...]

    @property
    def timeout_s(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    @property
    def key_template(self) -> str:
        return self.key or self.state.key or DEFAULT_KEY

    def is_protected(self, env: str) -> bool:
        environment = self.environments.get(env)
        if environment is not None and environment.protected is not None:
            return environment.protected
        return env in PROTECTED_BY_DEFAULT


def _format_error(path: Path, exc: ValidationError) -> ConfigError:
    return config_errors.format_error(path, exc, FileConfig)


def _normalise_blocks(data: dict[str, Any]) -> dict[str, Any]:
    """python-hcl2 gives `state { ... }` as a list of one dict; `state = { ... }` as a dict;
    and each labelled block `before_hook "fmt" { ... }` as a dict `{"fmt": {...}}` in a list."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in NAMED_KEYS and isinstance(value, list):
            out[key] = _labelled(key, value)
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            if len(value) > 1:
                raise ValueError(f"the block '{key}' appears {len(value)} times")
            value = value[0]
        out[key] = value
    return out


def _labelled(key: str, blocks: list[Any]) -> Any:
    named: dict[str, Any] = {}
    for block in blocks:
        if not isinstance(block, dict) or len(block) != 1:
            return blocks  # not labelled blocks: validation says what is wrong
        [(name, body)] = block.items()
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if name in named:
            raise ValueError(f"the block '{key} \"{name}\"' appears twice")
        named[name] = body
    return named


def _resolved(value: Any, path: Path, where: str) -> Any:
    """`value` with every string as the text it stands for: `$${` and `%%{` resolved to `${` and
    `%{`, as Terraform would read them. tfrun does not evaluate HCL, so a string that holds an
    interpolation or a directive (or a bare expression, which python-hcl2 gives as "${...}")
    is an error rather than text taken literally."""
    if isinstance(value, str):
        return _plain_text(value, path, f"'{where}'") if "{" in value else value
    if isinstance(value, list):
        return [_resolved(item, path, f"{where}.{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            plain = _plain_text(key, path, f"a key in '{where}'") if "{" in key else key
            out[plain] = _resolved(item, path, f"{where}.{key}" if where else key)
        return out
    return value


def _plain_text(text: str, path: Path, where: str) -> str:
    for mark in _TEMPLATE_MARK.finditer(text):
        opener = mark["template"]
        if opener:
            what = (
                "an expression (a reference, a function call, an interpolation)"
                if opener == "${"
                else "a template directive"
            )
            raise ConfigError(
                f'{path}: {where} is {json.dumps(text)}, and the "{opener}" in it starts '
                f"{what}, which tfrun cannot evaluate: config values are plain text. For a "
                f'literal "{opener}", write "{opener[0]}{opener}".'
            )
    return _TEMPLATE_MARK.sub(lambda mark: mark[0][1:], text)


def config_from_dump(dump: Mapping[str, Any]) -> Config:
    """A `Config` from what `model_dump(mode="json")` gave for it, without validating again
    (it was valid when dumped; ParseCache keys it by everything it came from)."""
    values = dict(dump)
    values["state"] = StateConfig.model_construct(**dump["state"])
    values["environments"] = {
        name: Environment.model_construct(**env) for name, env in dump["environments"].items()
    }
    values["retry"] = RetryConfig.model_construct(**dump["retry"])
    values["graph"] = GraphConfig.model_construct(**dump["graph"])
    values["auth"] = AuthConfig.model_construct(**dump["auth"])
    values["extra_arguments"] = {
        name: ExtraArguments.model_construct(**entry)
        for name, entry in dump["extra_arguments"].items()
    }
    values["before_hook"] = {
        name: BeforeHook.model_construct(**hook) for name, hook in dump["before_hook"].items()
    }
    values["after_hook"] = {
        name: AfterHook.model_construct(**hook) for name, hook in dump["after_hook"].items()
    }
    values["sources"] = tuple(Path(source) for source in dump["sources"])
    return Config.model_construct(**values)


class ParseCache:
    """Config files parsed and validated, by the sha256 of their bytes, and the merged
    configs built from them, kept in a JSON file between runs.

    python-hcl2 takes a few milliseconds per file however small, which on a repository of a
    thousand stacks is most of discovery; and validating needs pydantic's validators built,
    a tenth of a second. Only a speed-up: a missing or broken cache file means parsing, and one
    that cannot be written is left be. Entries are shared: read-only.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        # What parsing gives depends on python-hcl2 and on tfrun.hcl's clean-up of its output;
        # what validating gives, on this module.
        source, models = os.stat(hcl.__file__), os.stat(__file__)
        self.version = [2, hcl.hcl2_version(), source.st_mtime_ns, models.st_mtime_ns]
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_bytes())
                if isinstance(data, dict) and data.get("version") == self.version:
                    self.entries = data["entries"]

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.entries.get(key)

    def _put(self, key: str, value: Any) -> Any:
        self.entries[key] = value
        self.dirty = True
        return value

    def load(self, path: Path, *, is_root: bool, is_stack: bool) -> dict[str, Any]:
        """`load_file`, remembered by the file's content and place."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
        key = f"file {hashlib.sha256(data).hexdigest()} {is_root} {is_stack}"
        loaded = self._get(key)
        if loaded is None:
            loaded = load_file(path, is_root=is_root, is_stack=is_stack, parse=self.parse)
            self._put(key, loaded)
        return cast(dict[str, Any], loaded)

    def build(self, files: Sequence[tuple[Path, dict[str, Any]]], root_file: Path) -> Config:
        """`build`, remembered by everything it is built from."""
        source = json.dumps([[str(path), data] for path, data in files], sort_keys=True)
        key = f"config {hashlib.sha256(source.encode()).hexdigest()}"
        dump = self._get(key)
        if dump is not None:
            return config_from_dump(dump)
        config = build(files, root_file)
        self._put(key, config.model_dump(mode="json"))
        return config

    def parse(self, path: Path) -> dict[str, Any]:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
        key = hashlib.sha256(data).hexdigest()
        parsed = self._get(key)
        if parsed is None:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: cannot read this file ({exc}).") from None
            parsed = self._put(key, parse_text(text, path))
        return cast(dict[str, Any], parsed)

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        entries = {key: v for key, v in self.entries.items() if key in self.used}
        with contextlib.suppress(OSError):
            write_atomically(self.path, json.dumps({"version": self.version, "entries": entries}))
        self.dirty = False


def load_file(
    path: Path,
    *,
    is_root: bool,
    is_stack: bool,
    parse: Callable[[Path], dict[str, Any]] = parse_file,
) -> dict[str, Any]:
    """One file's settings as a dict of the keys it sets, validated."""
    raw = parse(path)
    try:
        data = _normalise_blocks(raw)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}; write it once.") from None
    data = cast(dict[str, Any], _resolved(data, path, ""))
    try:
        FileConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_error(path, exc) from None
    misplaced = [k for k in _ROOT_ONLY if k in data and not is_root]
    misplaced += [k for k in _STACK_ONLY if k in data and not is_stack]
    if misplaced:
        where = "the root tfrun.hcl" if misplaced[0] in _ROOT_ONLY else "a stack's stack.hcl"
        raise ConfigError(
            f"{path}: '{misplaced[0]}' belongs in {where}, not here "
            "(it would apply to the wrong set of stacks)."
        )
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nearer file wins; maps merge key by key, recursively, but named entries (NAMED_KEYS)
    one level only: an entry is replaced whole, never merged field by field."""
    out = dict(base)
    for key, value in override.items():
        if key in NAMED_KEYS and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build(files: Iterable[tuple[Path, dict[str, Any]]], root_file: Path) -> Config:
    """Merge the per-file settings (root first) into one validated `Config`."""
    merged: dict[str, Any] = {}
    sources = []
    origins: dict[str, str] = {}
    for path, data in files:
        merged = merge(merged, data)
        sources.append(path)
        for key in NAMED_KEYS:
            origins.update({f"{key}.{name}": str(path) for name in data.get(key) or {}})
    state = StateConfig.model_validate(merged.get("state") or {})
    missing = [name for name in ("bucket", "region") if getattr(state, name) is None]
    if missing:
        raise ConfigError(
            f"{root_file}: the 'state' block must set {' and '.join(missing)} "
            '(for example: state { bucket = "acme-tfstate"  region = "eu-west-1" }).'
        )
    defaults: dict[str, Any] = {
        "repo": None,
        "environments": {},
        "tags": {},
        "terraform_version": None,
        "providers": {},
        "endpoint": None,
        "default_region": None,
        "retry": {},
        "graph": {},
        "auth": {},
        "timeout": None,
        "keep_runs": None,
        "owner": None,
        "dependencies": [],
        "remote_state": {},
        "mock_outputs": {},
        "consumers": [],
        "env": None,
        "region": None,
        "profile": None,
        "key": None,
        "extra_arguments": {},
        "var_files": [],
        "before_hook": {},
        "after_hook": {},
    }
    values = {
        **defaults,
        **merged,
        "state": state,
        "origins": origins,
        "sources": tuple(sources),
    }
    try:
        return Config.model_validate(values)
    except ValidationError as exc:  # pragma: no cover - each file was validated already
        raise _format_error(sources[-1] if sources else root_file, exc) from None
